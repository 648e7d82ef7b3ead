"""The rounds: every contender of a workload warms up, then all take turns, round after
round, so that load elsewhere on a shared machine falls on all of them alike; each
contender's best round is its figure (the least disturbed one, as `timeit` takes the
minimum)."""
from __future__ import annotations

import dataclasses
import math
import time

import torch

from ..accel import fastpath, layout
from ..errors import unknown_name
from ..accel.precision import DTYPES, candidate_precisions
from ..accel.device import resolve_device
from . import data, measure, report, rival
from .lectures import BareStep, LectureInference, LectureLoop
from .ours import Inference, Training, build_model, fast_copy, fast_model
from .workloads import FULL, WORKLOADS, Settings

POOL = 16  # distinct in-memory batches that compute-only and inference contenders cycle through
PROBE = 3  # steps timed to size a contender's rounds


def _plan(contender, settings: Settings) -> tuple[int, int]:
    """(steps per round, untimed steps first): rounds of about `round_seconds`. Batches that
    DataLoader workers prefetch while the other contenders run are left untimed, as they
    would otherwise come for free; the steps are sized on a steady-state probe after them."""
    first = contender.run(1) if settings.warmup else 0.0  # allocations, workers, set-up
    if not settings.calibrate:
        return settings.max_steps, 0
    if first > settings.round_seconds:  # slow steps: a prefetched batch is a sliver of one
        return 1, 0
    prefetched = getattr(contender, "prefetched", 0)
    seconds = contender.run(PROBE, prefetched) / PROBE
    steps = max(1, min(settings.max_steps, math.ceil(settings.round_seconds / max(seconds, 1e-6))))
    return steps, prefetched


def measure_group(contenders: dict, images_per_step: int, settings: Settings) -> dict:
    """{name: images/s of the best round, steps per round, every round's seconds}."""
    plans = {name: _plan(c, settings) for name, c in contenders.items()}
    rounds, start = {name: [] for name in contenders}, time.perf_counter()
    for done in range(settings.rounds):
        if done >= settings.min_rounds and time.perf_counter() - start > settings.group_seconds:
            break
        for name, contender in contenders.items():
            rounds[name].append(contender.run(*plans[name]))
    return {name: {"images_per_second": plans[name][0] * images_per_step / min(seconds),
                   "steps_per_round": plans[name][0], "round_seconds": seconds}
            for name, seconds in rounds.items()}


def _training(w, settings, device, fast_net, fast, sets, lightning: bool) -> dict:
    images, labels, preprocess = sets
    bs, workers = settings.batch_size, settings.workers
    pool = data.augmented_batches(images, labels, preprocess, bs, POOL, device)
    contenders = {
        "bare_pytorch": BareStep(build_model(w, device), pool, device),
        "bare_pytorch_fast_path": BareStep(fast_copy(w, fast, device), pool, device,
                                           fast.precision),
        "cnnlab_compute": Training(fast_net, fast, pool, device),
        "cnnlab_end_to_end": Training(fast_net, fast, data.memory_batches(
            images, labels, preprocess, bs, device), device),
        "lecture_loop": LectureLoop(build_model(w, device), data.lecture_loader(
            images, labels, preprocess, bs, workers), device)}
    if lightning:
        contenders["lightning_compute"] = rival.Lightning(
            build_model(w, device), pool, device, fast.precision.name)
        contenders["lightning_end_to_end"] = rival.Lightning(
            build_model(w, device), data.lecture_loader(images, labels, preprocess, bs, workers),
            device, fast.precision.name)
    results = measure_group(contenders, bs, settings)
    results["cnnlab_compute"]["memory_mb"] = measure.training_memory_mb(
        fast_net, *pool[0], fast.precision)
    return results


def _inference(w, settings, device, fast, sets, lightning: bool) -> list:
    """cnnlab as `cnnlab predict` runs a saved model: in the layout fastest for
    the batch size, in the number format it trained in unless float32 is clearly faster
    (fastpath.for_inference). Lightning gets the training's number format; the lectures'
    loop is float32, as written."""
    plain = build_model(w, device)
    results = []
    for bs in settings.inference_batches:
        batches = data.plain_batches(*sets, bs, device)[:POOL]
        ours = build_model(w, device).eval()
        chosen, precision = ((settings.memory_format, fast.precision)
                             if settings.memory_format != "auto" else
                             fastpath.for_inference(ours, w.input_shape, bs, fast.precision))
        ours.to(memory_format=layout.FORMATS[chosen])
        contenders = {"cnnlab": Inference(ours, precision, batches, device),
                      "lecture_loop": LectureInference(plain, batches, device)}
        if lightning:
            contenders["lightning"] = rival.Lightning(plain, batches, device, fast.precision.name,
                                                      predict=True)
        group = measure_group(contenders, bs, settings)
        group["cnnlab"]["memory_mb"] = measure.inference_memory_mb(ours, batches[0][0],
                                                                   precision)
        results.append({"batch_size": bs, "layout": f"{chosen}, {precision.name}", **group})
    return results


def bench_workload(w, settings: Settings, device, compile: bool, lightning: bool, log) -> dict:
    count = max(settings.images // settings.batch_size, 1) * settings.batch_size
    sets = data.uint8_set(w.input_shape, max(count, max(settings.inference_batches)))
    fast_net, fast = fast_model(w, settings, device, compile)
    log(f"{w.name}: {fast.describe()}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    result = {"name": w.name, "model": w.model, "model_kwargs": w.model_kwargs,
              "input_shape": list(w.input_shape), "batch_size": settings.batch_size,
              "images": len(sets[1]), "fast_path": fast.to_dict(),
              "flops_per_image": {"training": measure.flops_per_image(w, True),
                                  "inference": measure.flops_per_image(w, False)},
              "training": _training(w, settings, device, fast_net, fast, sets, lightning),
              "inference": _inference(w, settings, device, fast, sets, lightning)}
    if device.type == "cuda":  # everything of this workload at once, all contenders together
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / measure.MB
    log(f"{w.name}: measured in {time.perf_counter() - started:.0f} s")
    return result


def run_bench(settings: Settings = FULL, device: str = "auto", models=None, compile: bool = False,
              log=lambda message: None) -> dict:
    """Measure every workload (or those whose model is in `models`); returns the report."""
    known = {w.model for w in WORKLOADS}
    for name in models or ():
        if name not in known:
            raise unknown_name("benchmark model", name, known)
    device = resolve_device(device)
    if settings.workers is None:  # the lectures' DataLoader: a worker per usable CPU
        settings = dataclasses.replace(settings, workers=fastpath.usable_cpus())
    lightning, machine = rival.version() is not None, report.machine(device)
    size = settings.matmul_size or (8192 if device.type == "cuda" else 2048)
    peaks = {}  # each number format the fast path may choose: MFU divides by its own peak
    for name in candidate_precisions("auto", device):
        dtype = DTYPES.get(name, torch.float32)
        peaks[name] = {**measure.peak_flops(device, dtype, size), "dtype": str(dtype),
                       "size": size}
        log(f"peak {peaks[name]['flops_per_second'] / 1e9:,.0f} GFLOP/s ({dtype}, n = {size})")
    log(f"load average {machine['load_average']}")
    results = [bench_workload(w, settings, device, compile, lightning, log)
               for w in WORKLOADS if not models or w.model in models]
    return report.assemble(machine, settings, peaks, results, lightning)
