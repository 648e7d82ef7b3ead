"""The few steps of training `explain depth` and `explain batchnorm` watch, and their data.

Not cnnlab's trainer on purpose: these claims are about what happens inside one step (the
gradient every layer receives, the values every layer outputs), so the loop is the lectures'
own (001: forward, loss, zero_grad, backward, step) with a hook where the claim looks.
SGD with momentum as He et al. 2016 trained their CIFAR networks (sec. 4.2), seeded, on the
CPU in float32: a claim's test can rely on the same numbers every run on one machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

TEST_SHARE = 0.25  # of scikit-learn's 1,797 digits, held out (seeded, the same every run)


@dataclass
class Digits:
    """scikit-learn's 8x8 digits as float tensors standardised with the training set's mean
    and std (the input normalisation of 004), split once with a fixed seed."""
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def digits_tensors() -> Digits:
    from ..data.sources import digits
    data = digits()
    order = torch.randperm(len(data.labels), generator=torch.Generator().manual_seed(0))
    images, labels = data.images[order].float() / 255, data.labels[order]
    cut = int(len(labels) * (1 - TEST_SHARE))
    mean, std = images[:cut].mean(), images[:cut].std()
    images = (images - mean) / std
    return Digits(images[:cut], labels[:cut], images[cut:], labels[cut:])


def count(value, name: str, low: int, high: int) -> int:
    """A whole number from user text within [low, high], or one sentence naming the option."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UserError(f"{name} must be a whole number, got '{value}'.") from None
    if not low <= number <= high:
        raise UserError(f"{name} must be from {low} to {high}, not {number}.")
    return number


def rate(value, name: str = "--lr") -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise UserError(f"{name} must be a number, got '{value}'.") from None
    if not 0 < number <= 10:
        raise UserError(f"{name} must be above 0 and at most 10, not {number}.")
    return number


def train_steps(model: nn.Module, data: Digits, steps: int, batch_size: int, lr: float,
                seed: int = 0, after_backward: Callable[[int], None] | None = None) -> list[float]:
    """`steps` SGD steps (momentum 0.9, weight decay 1e-4: He et al.'s) on random batches;
    `after_backward(step)` sees the gradients before each update. The losses, one per step."""
    gen = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    losses = []
    model.train()
    for step in range(steps):
        batch = torch.randint(0, len(data.train_labels), (batch_size,), generator=gen)
        loss = F.cross_entropy(model(data.train_images[batch]), data.train_labels[batch])
        optimiser.zero_grad()
        loss.backward()
        if after_backward is not None:
            after_backward(step)
        optimiser.step()
        # A diverged network's loss is nan: recorded as such, the claim reports it
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return float((model(images).argmax(1) == labels).double().mean())
