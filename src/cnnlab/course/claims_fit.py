"""The few seconds of training the claims need, kept apart from cnnlab's trainer on purpose:
the claims must hold for any sensible loop, and a learner can read this one in a minute.

Plain mini-batch Adam on tensors already in memory, cross-entropy on the logits (001's
'cross-validation loss' slide means this: cross-entropy; cross-validation is a way of
splitting data, not a loss). Seeded, on the CPU, in float32: the same numbers every run on a
machine, and a claim's test can rely on them.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


@contextmanager
def one_thread():
    """Run these tiny layers on one thread, then give back the previous count. Splitting an
    8-channel 24x24 convolution across threads costs more than it saves; on this project's
    shared 2-core machine the default two threads made `explain dense` about 10 times slower
    (16 s against 212 s for the CNN, measured while others' jobs ran)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def small_cnn(num_classes: int = 10, in_channels: int = 1, global_pool: bool = True,
              canvas: int = 24) -> nn.Sequential:
    """Three 3x3 convolutions (8, 16, 32 channels) each with batch norm (it trains in a few
    epochs instead of a few dozen), 2x2 max pooling after the first two, then global max
    pooling (where a feature is no longer matters) or, with global_pool=False, a flatten into
    a linear layer (one weight per position again)."""
    layers = []
    for c_in, c_out, pool in ((in_channels, 8, True), (8, 16, True), (16, 32, False)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if pool else []
    side = canvas // 4
    head = [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, num_classes)] if global_pool \
        else [nn.Flatten(), nn.Linear(32 * side * side, num_classes)]
    return nn.Sequential(*layers, *head)


def parse_epochs_scale(text) -> float:
    """--epochs-scale as a number above 0; anything else is the user's one-sentence mistake."""
    from ..errors import UserError
    try:
        value = float(str(text))
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise UserError(f"--epochs-scale must be a number above 0 and at most 100, got '{text}'.")
    return value


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 10,
        lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
        objective=F.cross_entropy) -> list[float]:
    """Train in place, minimising objective(outputs, labels); returns the mean training loss
    of each epoch."""
    with one_thread():
        return _fit(model, images, labels, epochs, lr, batch_size, seed, objective)


def _fit(model, images, labels, epochs, lr, batch_size, seed, objective) -> list[float]:
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(images), generator=gen), 0.0
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            loss = objective(model(images[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
    model.eval()
    return losses


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    model.eval()
    with one_thread():
        outputs = torch.cat([model(images[i:i + batch_size])
                             for i in range(0, len(images), batch_size)])
    # one logit (a binary classifier): class 1 where it is above 0, i.e. sigmoid above 0.5
    return (outputs[:, 0] > 0).long() if outputs.shape[1] == 1 else outputs.argmax(1)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(model, images) == labels).double().mean())
