"""Which memory layout runs a model faster on this machine: timed, then remembered.

channels_last (N, H, W, C in memory) lets oneDNN on CPUs and cuDNN on GPUs run convolutions
without reordering every tensor: 1.1-4x faster for most CNNs, but slower for a few (LeNet-5's
single input channel, for example). Nothing predicts it well, so a copy of the model is timed
for a few training steps in both layouts. The two layouts add up the same numbers in different
orders, so the choice is remembered per model, batch size, number format and machine (in
~/.cache/cnnlab/layouts.json, or $XDG_CACHE_HOME): the same config then computes the same run
every time, instead of a close call flipping with the load on the machine. Delete the file to
measure again.

Training and inference are chosen apart: a saved model is evaluated or asked to predict at
other batch sizes than it trained at (one image at a time, often), where the answer differs
(the lecture CNN: channels_last trains faster at batch 128, contiguous predicts one image
about 20% faster on a 2-core CPU).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ..atomic import atomic_write_text
from .precision import Precision

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
# channels_last is kept only when it saves at least this fraction of a step: a closer call is
# within the noise of a shared machine, and the default layout is the better-known one.
MARGIN = 0.10
# torch.utils.benchmark.Timer times each layout's steps in blocks of BLOCK steps, the two
# layouts taking turns block by block, until MAX_TRIALS timed steps per layout or BUDGET
# seconds (big models on a laptop CPU take seconds per step, and this runs before every new
# kind of run). Timer runs 2 untimed steps before each block: first-call allocations and
# kernel choices, then the caches the other layout's turn took. A first turn of one step
# each sizes the blocks: fewer steps for slow models, a block taking at most BLOCK_SECONDS
# or so, so that the budget holds a few turns; a model too slow for the budget gets that
# turn only, 3 steps per layout. LeNet-5's 3 ms steps: 4 blocks of 8 after the first turn,
# 43 steps per layout (8 single steps were seen to time its bf16 18% faster in one session
# on a shared 2-core machine and 27% slower in another).
BLOCK, BLOCK_SECONDS, MAX_TRIALS, BUDGET = 8, 0.25, 32, 3.0


def torch_benchmark():
    """torch.utils.benchmark, imported without the warning its cpp_extension import logs on a
    machine with a CUDA toolkit but no GPU ("No CUDA runtime is found"): nothing a user of a
    timing can act on, printed in the middle of a training run's report."""
    import logging
    compiler_log = logging.getLogger("torch.utils.cpp_extension")
    level = compiler_log.level
    compiler_log.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        compiler_log.setLevel(level)
    return benchmark


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock time covers the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def clock(device: torch.device):
    """Seconds, read once `device`'s queued work is done. Timer's own clock waits for the
    current GPU only, which is not the model's with --device cuda:1."""
    def now() -> float:
        synchronize(device)
        return time.perf_counter()
    return now


def surrogate_loss(outputs) -> torch.Tensor:
    """A scalar that every floating-point output depends on, whatever the task and however
    the outputs are nested: the forward and backward pass cost what they cost with the task's
    real loss, which adds little beside them."""
    leaves = tree_leaves(outputs)
    return sum(t.float().mean() for t in leaves
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def train_step(model: nn.Module, inputs, precision: Precision) -> None:
    """One forward and backward pass (the part the layout changes)."""
    with precision.autocast():  # every output counts: GoogLeNet's side heads too
        loss = surrogate_loss(model(inputs))
    loss.backward()
    model.zero_grad(set_to_none=True)


def infer(model: nn.Module, inputs, precision: Precision) -> None:
    """One forward pass as `evaluate` and `predict` run it."""
    with torch.inference_mode(), precision.autocast():
        model(inputs)


def step_seconds(model: nn.Module, inputs, precision: Precision) -> float:
    """Wall time of one forward and backward pass, its first-call costs included (how
    `compile_model` times the step that compiles: Timer would run warm-up steps first)."""
    now = clock(inputs.device)
    start = now()
    train_step(model, inputs, precision)
    return now() - start


def time_layouts(model: nn.Module, input_shape, batch_size: int, precision: Precision,
                 training: bool = True) -> dict:
    """Best seconds per training step (or forward pass) of a copy of `model` in each layout,
    the layouts interleaved so that a burst of load elsewhere on the machine hits both."""
    benchmark = torch_benchmark()  # here, not for every command: it takes 0.1 s

    device = next(model.parameters()).device
    copies = {name: copy.deepcopy(model).train(training).to(memory_format=fmt)
              for name, fmt in FORMATS.items()}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        inputs = torch.randn(batch_size, *input_shape, device=device)
        timers = {name: benchmark.Timer(
            stmt="work(model, inputs, precision)", timer=clock(device),
            globals={"work": train_step if training else infer, "model": m, "inputs": inputs,
                     "precision": precision},
            num_threads=torch.get_num_threads())  # Timer's default, 1, is not how runs train
            for name, m in copies.items()}
        start = time.perf_counter()
        first = {name: timer.timeit(1).mean for name, timer in timers.items()}
        steps = max(1, min(BLOCK, int(BLOCK_SECONDS / max(first.values()))))
        # the first turn's step counts where the blocks are single steps too; beside blocks of
        # several steps, a single step could be the fastest by luck
        blocks = {name: [seconds] if steps == 1 else [] for name, seconds in first.items()}
        timed = 0
        while timed < MAX_TRIALS and time.perf_counter() - start < BUDGET:
            for name, timer in timers.items():
                blocks[name].append(timer.timeit(steps).mean)
            timed += steps
    # The fastest block, each block the mean of its steps: its steps average out single steps'
    # luck, and taking the fastest leaves out the blocks a burst of load elsewhere slowed (the
    # median would keep them when a burst covered most of the few blocks a model gets).
    return {name: min(times or [first[name]]) for name, times in blocks.items()}


def faster_layout(seconds: dict) -> str:
    faster = seconds["channels_last"] <= (1 - MARGIN) * seconds["contiguous"]
    return "channels_last" if faster else "contiguous"


def has_feature_maps(model: nn.Module) -> bool:
    """Only 4-D weights (convolutions) have a layout to choose."""
    return any(p.dim() == 4 for p in model.parameters())


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cnnlab" / "layouts.json"


def cache_key(model: nn.Module, input_shape, batch_size: int, precision: Precision,
              training: bool = True) -> str:
    """The model's layers (repr), its input, batch size, number format and task (training or
    inference), and the machine."""
    device = next(model.parameters()).device
    hardware = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads")
    text = (f"{model!r}|{tuple(input_shape)}|{batch_size}|{precision.name}|{hardware}|"
            f"{torch.__version__}{'' if training else '|inference'}")
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: measure again
        return {}


def remembered(model: nn.Module, input_shape, batch_size: int, precision: Precision,
               training: bool = True) -> tuple[str, dict] | None:
    """(layout, {layout: seconds per step}) remembered from an earlier timing, or None."""
    known = _read_cache(cache_file()).get(
        cache_key(model, input_shape, batch_size, precision, training))
    return (known["layout"], known["step_seconds"]) if known is not None else None


def timing_seconds(step: float) -> float:
    """About how long timing both layouts in one number format takes for a model whose
    training step takes `step` seconds: each layout's first turn (Timer's 2 warm-up steps
    and 1 timed), then blocks of at most BLOCK steps (2 warm-up steps each) up to MAX_TRIALS,
    stopped by BUDGET."""
    turn = 3 * step
    steps = max(1, min(BLOCK, int(BLOCK_SECONDS / step)))
    blocks = -(-MAX_TRIALS // steps) * (steps + 2) * step
    return len(FORMATS) * turn + min(len(FORMATS) * blocks, BUDGET + len(FORMATS) * (steps + 2) * step)


def choose_layout(model: nn.Module, input_shape, batch_size: int, precision: Precision,
                  remember: bool = True, training: bool = True) -> tuple[str, dict]:
    """(layout, {layout: seconds per step}) for `model` to train (or, with training False,
    to infer) at `batch_size`: remembered, or timed and remembered."""
    key, path = cache_key(model, input_shape, batch_size, precision, training), cache_file()
    known = _read_cache(path).get(key) if remember else None
    if known is not None:
        return known["layout"], known["step_seconds"]
    seconds = time_layouts(model, input_shape, batch_size, precision, training)
    layout = faster_layout(seconds)
    if remember:
        entries = _read_cache(path) | {key: {"layout": layout, "step_seconds": seconds}}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
        except OSError:  # a read-only home: the choice is still made, just not remembered
            pass
    return layout, seconds
