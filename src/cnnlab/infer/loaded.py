"""A trained run made ready to answer: its model on the device, in the layout and number
format that run its forward pass fastest here, through the test-time augmentation it was
evaluated with. Shared by `cnnlab evaluate`, `report` and `predict`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..accel import fastpath
from ..accel.device import resolve_device
from ..accel.precision import Precision, recorded_precision
from ..runs import folder as runs
from ..tasks.tta import with_tta


@dataclass
class Loaded:
    run: runs.Run
    model: nn.Module      # what answers: the trained model through its --tta
    precision: Precision  # the number format its forward pass runs in
    device: torch.device


def load_for_inference(run_dir: str | Path, device: str, batch_size: int | None = None,
                       exact: bool = False) -> Loaded:
    """`batch_size`: what the fast path is timed at (None: the run's own). `exact`: keep the number format it trained in, so that evaluation repeats training's
    test figures to the digit (predict may switch to fp32 where that is faster)."""
    device = resolve_device(device)
    run = runs.load_run(run_dir, device)
    config, preprocess = run.spec.config, run.spec.preprocess
    _, precision = fastpath.for_inference(run.model, (preprocess.channels, *preprocess.size),
                                          batch_size or config.batch_size,
                                          recorded_precision(config.precision, device),
                                          exact=exact)
    return Loaded(run, with_tta(run.model, config.tta), precision, device)
