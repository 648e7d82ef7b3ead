"""The baselines written as people write them: a bare PyTorch step, and the lectures' loop.

The lectures' loop (001 'Training', 003 'custom Dataset') reads a DataLoader whose workers
transform one image at a time, and adds `loss.item()` to a running loss every step, which
makes the host wait for the step to finish. Its model runs as built (contiguous, float32).
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ..accel.precision import FP32, Precision
from .measure import timed
from .ours import LR, MOMENTUM, endless


class BareStep:
    """Forward, loss, backward, optimiser step: nothing else, on batches already in memory.
    With `precision`, the forward pass runs in its autocast, as cnnlab's does."""

    def __init__(self, model: nn.Module, batches: list, device: torch.device,
                 precision: Precision = FP32):
        self.model, self.device, self.stream = model, device, endless(batches)
        self.precision = precision
        self.optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss_fn = nn.CrossEntropyLoss()

    def _steps(self, steps: int) -> None:
        self.model.train()
        for inputs, labels in itertools.islice(self.stream, steps):
            with self.precision.autocast():
                loss = self.loss_fn(self.model(inputs), labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def run(self, steps: int, untimed: int = 0) -> float:
        return timed(self.device, lambda: self._steps(steps))


class LectureLoop:
    """The lectures' loop. Its workers keep working while the other contenders run, so up to
    `prefetched` batches are ready when its round begins; the suite leaves those untimed."""

    def __init__(self, model: nn.Module, loader, device: torch.device):
        self.model, self.device, self.stream = model, device, endless(loader)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss_func = nn.CrossEntropyLoss()
        self.prefetched = loader.num_workers * (loader.prefetch_factor or 0)
        self.running_loss = 0.0

    def _steps(self, steps: int) -> None:
        self.model.train()
        for inputs, labels in itertools.islice(self.stream, steps):
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            y_pred = self.model(inputs)               # 1) feed forward
            loss = self.loss_func(y_pred, labels)     # 2) compute the loss
            self.optimizer.zero_grad()                # 3) backpropagation of errors
            loss.backward()
            self.optimizer.step()                     # 4) update parameters
            self.running_loss += loss.item()

    def run(self, steps: int, untimed: int = 0) -> float:
        self._steps(untimed)
        return timed(self.device, lambda: self._steps(steps))


class LectureInference:
    """`with torch.no_grad()` over the batches, counting correct answers with .item()."""

    def __init__(self, model: nn.Module, batches: list, device: torch.device):
        self.model, self.device, self.stream = model, device, endless(batches)
        self.correct = 0

    def _steps(self, steps: int) -> None:
        self.model.eval()
        with torch.no_grad():
            for inputs, labels in itertools.islice(self.stream, steps):
                self.correct += (self.model(inputs).argmax(1) == labels).sum().item()

    def run(self, steps: int, untimed: int = 0) -> float:
        return timed(self.device, lambda: self._steps(steps))
