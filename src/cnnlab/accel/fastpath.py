"""The fast path for one model on one device: memory layout, number format, compilation, threads.

- Layout: channels_last or contiguous, whichever trains this model faster here (layout.py);
  config.json records the choice, so a resumed run computes exactly as it began. A saved
  model is evaluated and predicts in the layout fastest for that (`for_inference`).
- Number format: mixed precision on GPUs by default; on CPUs that multiply bf16 natively, bf16
  where it times clearly faster than fp32 for this model, timed with the layout (precision.py).
- `--compile`: torch.compile fuses the model's operations into generated kernels. Compiling
  takes seconds to minutes, so it is triggered once, timed, before training
  (compile_seconds), and the epochs' images/s count steps only. It pays on GPUs; on CPUs
  it is often slower.
- Threads: no more than the CPUs this process may really use (a container's quota counts).
Host and device copies are already non-blocking in the engine, and the in-memory data path
never leaves the device.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import distributed, layout
from ..atomic import atomic_write_text
from .precision import Precision, candidate_precisions

RECORD = "fastpath.json"  # in the run folder: what was chosen and what it measured
# Timing layouts and number formats is done only for a run at least PAYBACK times as long as
# the timing: a layout or a format that saves half of every step (rarely more) then wins back
# what timing cost. A shorter run takes the default (or a choice remembered from an earlier
# timing): a 1-epoch run on the digits trains in less time than its timing would take.
PAYBACK = 2


@dataclass
class FastPath:
    memory_format: str
    precision: Precision
    threads: int
    compile_seconds: float | None = None
    step_seconds: dict = field(default_factory=dict)  # layout -> best seconds per step
    chosen_by: str = "timing"  # or why not: "remembered ...", "run too short ...", "as asked" ...

    def to_dict(self) -> dict:
        return {"memory_format": self.memory_format, "precision": self.precision.name,
                "threads": self.threads, "compile_seconds": self.compile_seconds,
                "step_seconds": self.step_seconds, "chosen_by": self.chosen_by}

    def describe(self) -> str:
        timed = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in self.step_seconds.items())
        compiled = (f"; compiled in {self.compile_seconds:.1f} s"
                    if self.compile_seconds is not None else "")
        why = "" if self.chosen_by == "timing" else f" ({self.chosen_by})"
        return (f"fast path: {self.memory_format}{f' (a step: {timed})' if timed else ''}, "
                f"{self.precision.name}{why}, {self.threads} threads{compiled}")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no limit) or "200000 100000" (two CPUs' worth)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def configure_threads() -> int:
    """Never more compute threads than usable CPUs: an oversubscribed pool keeps waiting on
    threads the OS has parked. Only ever lowers the count (OMP_NUM_THREADS=1 stays 1)."""
    threads = min(torch.get_num_threads(), usable_cpus())
    torch.set_num_threads(threads)
    return threads


def compile_model(model: nn.Module, input_shape, batch_size: int, precision: Precision) -> float:
    """Compile `model` in place (its state_dict keeps its names) and trigger the compilation
    with one forward and backward pass; returns its seconds. Batch-norm statistics, gradients
    and random numbers are left as they were, so the run trains as it would have."""
    device = next(model.parameters()).device
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.compile()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        inputs = torch.zeros(batch_size, *input_shape, device=device)
        seconds = layout.step_seconds(model.train(), inputs, precision)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return seconds


def _choose(config, model, input_shape, device, world, samples: int | None = None,
            steps: int | None = None) -> tuple[str, str, dict, str]:
    """(layout, number format, {"layout format": seconds per step}, chosen by): what the
    config fixes, else the fastest timed option. A number format other than the first
    candidate (fp32) must save MARGIN of a step, as channels_last must: a close call keeps
    the default. A run of `steps` steps too short to pay for timing takes the default, unless
    an earlier timing of the same model, batch and machine is remembered."""
    formats = candidate_precisions(config.precision, device)
    timed = config.memory_format == "auto" or len(formats) > 1
    untimeable = getattr(model, "takes_targets", False)  # a detector: no step without targets
    fixed = None if config.memory_format == "auto" else config.memory_format
    if config.deterministic or not layout.has_feature_maps(model) or not timed or untimeable:
        # --deterministic: nothing may depend on a timing
        return fixed or "contiguous", formats[0], {}, _untimed(config, model, timed, untimeable)
    # no step is ever larger than the data set: --batch-size 100000 on 1,257 images times 1,257
    batch = min(config.batch_size, samples) if samples else config.batch_size
    known = [layout.remembered(model, input_shape, batch, Precision(name, device.type))
             for name in formats]
    why = "timing" if None in known else "remembered from an earlier timing"
    if why == "timing" and steps is not None:  # decided once, for every process alike
        short = distributed.broadcast(world, _too_short(
            model, input_shape, batch, formats, device, steps) if world.main else None)
        if short:
            return fixed or "contiguous", formats[0], {}, short
    chosen, number_format, seconds = _fastest(
        model, input_shape, batch, formats, device, world.main, training=True, fixed=fixed)
    chosen = distributed.broadcast(world, (chosen, number_format))  # every process alike
    return chosen[0], chosen[1], seconds, why


def _untimed(config, model, timed: bool, untimeable: bool) -> str:
    """Why the fast path was not timed, in the words of `describe`."""
    if not timed:
        return "as asked"
    if config.deterministic:
        return "--deterministic: nothing may depend on a timing"
    if untimeable:
        return "a step of this model needs its targets"
    return "no convolution to lay out"


def _too_short(model, input_shape, batch: int, formats: list[str], device, steps: int) -> str:
    """Why a run of `steps` steps is too short to time its options (one step of a copy of
    the model, first-call costs included, estimates both), or "" when it is not."""
    if steps >= PAYBACK * layout.BUDGET * len(formats) / 1e-4:
        return ""  # longer than any timing of a step of 0.1 ms or more: no need to measure
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        inputs = torch.randn(batch, *input_shape, device=device)
        step = layout.step_seconds(probe, inputs, Precision(formats[0], device.type))
    timing = len(formats) * layout.timing_seconds(step)
    if steps * step >= PAYBACK * timing:
        return ""
    return (f"run too short to time layouts: {steps:,} steps of about {step * 1e3:.0f} ms, "
            f"timing would take about {timing:.1f} s")


def _fastest(model, input_shape, batch_size: int, formats: list[str], device, remember: bool,
             training: bool, fixed: str | None = None) -> tuple[str, str, dict]:
    """(layout, number format, {"layout format": seconds}) of the fastest option timed;
    a format other than formats[0] must save MARGIN of a step, as channels_last must."""
    best, seconds = {}, {}
    for name in formats:
        chosen, measured = layout.choose_layout(model, input_shape, batch_size,
                                                Precision(name, device.type), remember=remember,
                                                training=training)
        chosen = fixed or chosen  # a layout the user fixed: timed for the number format only
        best[name] = (chosen, measured[chosen])
        seconds.update({f"{fmt} {name}": value for fmt, value in measured.items()})
    fastest = min(best, key=lambda name: best[name][1])
    if best[fastest][1] > (1 - layout.MARGIN) * best[formats[0]][1]:
        fastest = formats[0]
    return best[fastest][0], fastest, seconds


def setup(config, model: nn.Module, input_shape, device: torch.device,
          world: distributed.World | None = None, samples: int | None = None,
          steps: int | None = None):
    """Apply the fast path `config` asks for to `model`, in place, before the optimiser and
    any DataParallel wrapper see it (timed on batches of at most `samples`, the training
    set's size, where the run's `steps` pay for the timing; None: always). Returns the config
    with its 'auto' choices made, and the FastPath (what was chosen and measured)."""
    world = world or distributed.World()
    threads = configure_threads() if device.type == "cpu" else torch.get_num_threads()
    chosen, number_format, seconds, why = _choose(config, model, input_shape, device, world,
                                                  samples, steps)
    precision = Precision(number_format, device.type)
    model.to(memory_format=layout.FORMATS[chosen])
    fast = FastPath(chosen, precision, threads, step_seconds=seconds, chosen_by=why)
    if config.compile:
        fast.compile_seconds = compile_model(model, input_shape, config.batch_size, precision)
    return dataclasses.replace(config, memory_format=chosen, precision=precision.name), fast


def for_inference(model: nn.Module, input_shape, batch_size: int,
                  precision: Precision | None = None,
                  exact: bool = False) -> tuple[str, Precision]:
    """Put a trained `model` in the layout that runs its forward pass fastest here at
    `batch_size`, and choose the number format: `precision` (the one it trained in), or
    float32 where that is clearly faster (bf16 at batch 1 can be slower than float32 on a
    CPU) unless `exact` (evaluation: training's test figures repeated to the digit). Timed
    once, then remembered (layout.py); returns (layout name, Precision)."""
    device = next(model.parameters()).device
    precision = precision or Precision("fp32", device.type)
    if not layout.has_feature_maps(model):
        return "contiguous", precision
    formats = [precision.name] if exact else list(dict.fromkeys([precision.name, "fp32"]))
    chosen, number_format, _ = _fastest(model, input_shape, batch_size, formats, device,
                                        remember=True, training=False)
    model.to(memory_format=layout.FORMATS[chosen])
    return chosen, Precision(number_format, device.type)


def write_record(run_dir: Path, fast: FastPath) -> None:
    atomic_write_text(Path(run_dir) / RECORD, json.dumps(fast.to_dict(), indent=2) + "\n")
