"""What a benchmark run found: the machine, ratios, model FLOP utilisation, the speed
targets cnnlab holds itself to, and the files benchmarks/results/<date>-<machine>.{json,md}."""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

import torch
import torchvision

from .. import __version__
from ..accel.fastpath import usable_cpus
from . import rival
from .tables import markdown
from .workloads import FULL


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {"device": str(device), "name": name,
            "slug": slug if device.type == "cuda" else f"{slug}-{usable_cpus()}cpu",
            "cpus": usable_cpus(), "threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "lightning": rival.version(), "cnnlab": __version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def paired_ratio(a: dict | None, b: dict | None) -> float | None:
    """How many times faster contender `a` is than `b` (same images per step): the median,
    over rounds, of their speeds in the same round. A round runs every contender back to
    back, so when a shared machine slows down for a while (by up to 2x for minutes, seen
    here) both of a pair slow together; best-of-rounds figures can come from different
    stretches of time and disagree by more than the differences measured."""
    if not a or not b:
        return None
    speeds = [[x["steps_per_round"] / seconds for seconds in x["round_seconds"]] for x in (a, b)]
    return statistics.median(x / y for x, y in zip(*speeds))


def ratios(w: dict) -> dict:
    t = w["training"]
    out = {"end_to_end_vs_lecture_loop": paired_ratio(t["cnnlab_end_to_end"], t["lecture_loop"]),
           "end_to_end_vs_compute_only": paired_ratio(t["cnnlab_end_to_end"], t["cnnlab_compute"]),
           "compute_vs_bare_step": paired_ratio(t["cnnlab_compute"], t["bare_pytorch"]),
           "compute_vs_bare_step_fast_path": paired_ratio(t["cnnlab_compute"],
                                                          t["bare_pytorch_fast_path"]),
           "compute_vs_lightning": paired_ratio(t["cnnlab_compute"], t.get("lightning_compute")),
           "end_to_end_vs_lightning": paired_ratio(t["cnnlab_end_to_end"],
                                                   t.get("lightning_end_to_end"))}
    for group in w["inference"]:
        for rival_name in ("lecture_loop", "lightning"):
            out[f"inference_{group['batch_size']}_vs_{rival_name}"] = paired_ratio(
                group["cnnlab"], group.get(rival_name))
    return out


def utilisation(w: dict, peak: float) -> dict:
    """Achieved FLOP/s over the matmul peak: how much of the machine the model uses."""
    train, infer = w["flops_per_image"]["training"], w["flops_per_image"]["inference"]
    largest = w["inference"][-1]
    return {"training_compute": train * w["training"]["cnnlab_compute"]["images_per_second"] / peak,
            "training_end_to_end":
                train * w["training"]["cnnlab_end_to_end"]["images_per_second"] / peak,
            f"inference_{largest['batch_size']}":
                infer * largest["cnnlab"]["images_per_second"] / peak}


def targets(workloads: list) -> list:
    """The speed targets, each with what this run measured."""
    rows = []
    def add(what, value, goal):
        rows.append({"target": what, "goal": goal, "measured": value,
                     "met": None if value is None else value >= goal})
    for w in workloads:
        r = w["ratios"]
        if w["model"] == "lecture_cnn":
            add("lecture_cnn end to end vs the lectures' loop",
                r["end_to_end_vs_lecture_loop"], 4.0)
            add("lecture_cnn end to end vs its compute-only",
                r["end_to_end_vs_compute_only"], 0.9)
        if w["model"] == "resnet18":  # same layout and number format: the loop alone
            add("resnet18 (small stem) step vs a bare PyTorch step on the same model",
                r["compute_vs_bare_step_fast_path"], 0.95)
            add("resnet18 (small stem) step vs a bare PyTorch step as written",
                r["compute_vs_bare_step"], 0.95)
        for key in sorted(k for k in r if k.endswith("vs_lightning")):
            add(f"{w['name']} {key.replace('_vs_lightning', '').replace('_', ' ')} vs Lightning",
                r[key], 1.0)
    return rows


def assemble(machine_info, settings, peaks: dict, workloads: list, lightning: bool) -> dict:
    """`peaks`: {number format: peak_flops(...)}, the first being float32's (or the device's
    default format's)."""
    for w in workloads:
        w["ratios"] = ratios(w)
        chosen = peaks.get(w["fast_path"]["precision"], next(iter(peaks.values())))
        w["utilisation"] = utilisation(w, chosen["flops_per_second"])
    peak = next(iter(peaks.values()))
    notes = [] if lightning else ["PyTorch Lightning is not installed (pip install "
                                  "'cnnlab[bench]'): its columns are left out."]
    end_load = [round(x, 2) for x in os.getloadavg()]
    busiest = max(machine_info["load_average"][0], end_load[0])
    if busiest > machine_info["cpus"] / 2:  # other work competed for the cores we time on
        notes.append(f"The machine was busy (load average up to {busiest} on "
                     f"{machine_info['cpus']} CPUs): figures are noisy; compare ratios only.")
    return {"cnnlab_bench": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {**machine_info, "load_average_end": end_load},
            "settings": dict(settings.__dict__), "peak": peak, "peaks": peaks,
            "workloads": workloads,
            "targets": targets(workloads), "notes": notes}


def write_results(result: dict, out_dir: str | Path, quick: bool = False,
                  markdown=markdown) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch = result["settings"]["batch_size"]
    stem = (f"{result['created'][:10]}-{result['machine']['slug']}"
            f"{'' if batch == FULL.batch_size or quick else f'-batch{batch}'}"
            f"{'-quick' if quick else ''}")
    paths = out / f"{stem}.json", out / f"{stem}.md"
    paths[0].write_text(json.dumps(result, indent=2) + "\n")
    paths[1].write_text(markdown(result))
    return paths
