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
import math
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
# At least MIN_TRIALS timed steps per layout, more while under BUDGET seconds (big models on
# a laptop CPU take seconds per step, and this runs before every new kind of run). Small
# models get up to MAX_TRIALS: with 8, LeNet-5's 3 ms steps on a shared 2-core machine were
# seen to time bf16 18% faster in one session and 27% slower in another.
MIN_TRIALS, MAX_TRIALS, BUDGET = 2, 40, 3.0


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock time covers the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def surrogate_loss(outputs) -> torch.Tensor:
    """A scalar that every floating-point output depends on, whatever the task and however
    the outputs are nested: the forward and backward pass cost what they cost with the task's
    real loss, which adds little beside them."""
    leaves = tree_leaves(outputs)
    return sum(t.float().mean() for t in leaves
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def step_seconds(model: nn.Module, inputs, precision: Precision) -> float:
    """Wall time of one forward and backward pass (the part the layout changes)."""
    synchronize(inputs.device)
    start = time.perf_counter()
    with precision.autocast():  # every output counts: GoogLeNet's side heads too
        loss = surrogate_loss(model(inputs))
    loss.backward()
    model.zero_grad(set_to_none=True)
    synchronize(inputs.device)
    return time.perf_counter() - start


def inference_seconds(model: nn.Module, inputs, precision: Precision) -> float:
    """Wall time of one forward pass as `evaluate` and `predict` run it."""
    synchronize(inputs.device)
    start = time.perf_counter()
    with torch.inference_mode(), precision.autocast():
        model(inputs)
    synchronize(inputs.device)
    return time.perf_counter() - start


def time_layouts(model: nn.Module, input_shape, batch_size: int, precision: Precision,
                 training: bool = True) -> dict:
    """Best seconds per training step (or forward pass) of a copy of `model` in each layout,
    the layouts interleaved so that a burst of load elsewhere on the machine hits both."""
    device = next(model.parameters()).device
    copies = {name: copy.deepcopy(model).train(training).to(memory_format=fmt)
              for name, fmt in FORMATS.items()}
    run = step_seconds if training else inference_seconds
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        inputs = torch.randn(batch_size, *input_shape, device=device)
        for m in copies.values():  # warm-up: first-call allocations and kernel choices
            run(m, inputs, precision)
        best, start, trials = dict.fromkeys(copies, math.inf), time.perf_counter(), 0
        while trials < MIN_TRIALS or (trials < MAX_TRIALS and time.perf_counter() - start < BUDGET):
            for name, m in copies.items():
                best[name] = min(best[name], run(m, inputs, precision))
            trials += 1
    return best


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
