"""cnnlab's side: the engine's own loop (train_one_epoch, evaluate) on a model set up by the
fast path exactly as `cnnlab train` sets it up (fastpath.setup)."""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ..accel import fastpath, layout
from ..config.train_config import TrainConfig
from ..engine.loop import evaluate, train_one_epoch
from ..models import create_model
from ..tasks.classify import Classify
from .measure import timed
from .workloads import CLASSES

LR, MOMENTUM = 0.01, 0.9  # SGD for every contender: the loop is measured, not the recipe


def build_model(workload, device: torch.device, seed: int = 0) -> nn.Module:
    """The same initial weights for every contender of a workload."""
    torch.manual_seed(seed)
    return create_model(workload.model, num_classes=CLASSES, in_channels=workload.input_shape[0],
                        **workload.model_kwargs).to(device)


def fast_model(workload, settings, device: torch.device, compile: bool = False):
    """(model, FastPath): the model as `cnnlab train` would run it on this device."""
    model = build_model(workload, device)
    config = TrainConfig(model=workload.model, batch_size=settings.batch_size, device=str(device),
                         memory_format=settings.memory_format, compile=compile)
    _, fast = fastpath.setup(config, model, workload.input_shape, device)
    return model, fast


def fast_copy(workload, fast, device: torch.device) -> nn.Module:
    """Another model with the same weights and the layout the fast path chose for it."""
    return build_model(workload, device).to(memory_format=layout.FORMATS[fast.memory_format])


def endless(batches):
    """Pass after pass of `batches` (a TensorBatches reshuffles at every pass)."""
    return itertools.chain.from_iterable(itertools.repeat(batches))


class Training:
    """train_one_epoch over `steps` batches from `batches`, cycled as needed."""

    def __init__(self, model: nn.Module, fast, batches, device: torch.device):
        self.model, self.precision, self.device = model, fast.precision, device
        self.stream = endless(batches)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def run(self, steps: int, untimed: int = 0) -> float:
        return timed(self.device, lambda: train_one_epoch(
            self.model, itertools.islice(self.stream, steps), Classify(), self.optimizer,
            precision=self.precision))


class Inference:
    """engine.evaluate (what `cnnlab evaluate` runs) over `steps` batches."""

    def __init__(self, model: nn.Module, precision, batches: list, device: torch.device):
        self.model, self.precision, self.device = model, precision, device
        self.stream = endless(batches)

    def run(self, steps: int, untimed: int = 0) -> float:
        return timed(self.device, lambda: evaluate(
            self.model, itertools.islice(self.stream, steps), Classify(), precision=self.precision))
