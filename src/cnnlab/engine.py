"""The lectures' training loop, as small functions that know nothing of particular models or data.

    for epoch in range(n_epochs):
        for inputs, labels in trainloader:
            y_pred = cnn(inputs)              # 1) feed forward
            loss = loss_func(y_pred, labels)  # 2) compute the loss
            optimizer.zero_grad()             # 3) backpropagation of errors
            loss.backward()
            optimizer.step()                  # 4) update parameters

Running totals stay on the device and are read once per epoch: asking for `loss.item()`
every step would make the host wait for the accelerator every step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from .models.base import AuxOutputs


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def training_loss(outputs, labels, loss_fn: Callable):
    """(loss, logits). A model with auxiliary classifiers (GoogLeNet) returns AuxOutputs in
    training mode; each side head's loss is added with its weight, as its paper trains it."""
    if isinstance(outputs, AuxOutputs):
        loss = loss_fn(outputs.logits, labels)
        for weight, aux in zip(outputs.aux_weights, outputs.aux):
            loss = loss + weight * loss_fn(aux, labels)
        return loss, outputs.logits
    return loss_fn(outputs, labels), outputs


def train_one_epoch(model: nn.Module, batches: Iterable, loss_fn: Callable, optimizer,
                    scheduler=None, on_step: Callable[[], None] | None = None) -> dict:
    """One pass over `batches` in training mode. `scheduler`, if given, steps every batch."""
    device = _device_of(model)
    model.train()  # dropout active, batch norm uses and updates batch statistics
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for inputs, labels in batches:
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        loss, outputs = training_loss(model(inputs), labels, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach() * len(labels)
        correct += (outputs.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        if on_step is not None:
            on_step()
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum.item() / seen, "train_accuracy": correct.item() / seen,
            "seconds": seconds, "images_per_second": seen / seconds}


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    labels: torch.Tensor         # true classes, on the CPU
    predictions: torch.Tensor    # predicted classes
    probabilities: torch.Tensor  # softmax outputs, N x classes


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, loss_fn: Callable | None = None) -> Evaluation:
    """Loss, accuracy and predictions in evaluation mode, without building a graph."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _device_of(model)
    was_training = model.training
    model.eval()  # dropout off, batch norm uses its running statistics
    try:
        logits, labels = [], []
        for inputs, target in batches:
            logits.append(model(inputs.to(device, non_blocking=True)))
            labels.append(target.to(device, non_blocking=True))
    finally:
        model.train(was_training)
    logits, labels = torch.cat(logits), torch.cat(labels)
    predictions = logits.argmax(dim=1)
    return Evaluation(loss=loss_fn(logits, labels).item(),
                      accuracy=(predictions == labels).float().mean().item(),
                      labels=labels.cpu(), predictions=predictions.cpu(),
                      probabilities=logits.softmax(dim=1).cpu())


def fit(model: nn.Module, train_batches: Iterable, val_batches: Iterable, *, epochs: int,
        optimizer, scheduler=None, scheduler_per_batch: bool = False,
        loss_fn: Callable | None = None, start_epoch: int = 1,
        on_epoch_end: Callable[[dict], None] | None = None,
        on_step: Callable[[], None] | None = None) -> list[dict]:
    """Train for `epochs`, validating after each; returns one metrics dict per epoch.

    train_loss is the objective optimised (`loss_fn`, label smoothing included); val_loss is
    plain cross-entropy, comparable across recipes and with the test loss.
    `on_epoch_end(metrics)` is where a caller saves checkpoints and logs; the engine itself
    writes nothing.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = []
    for epoch in range(start_epoch, start_epoch + epochs):
        lr = optimizer.param_groups[0]["lr"]
        metrics = {"epoch": epoch, **train_one_epoch(
            model, train_batches, loss_fn, optimizer,
            scheduler if scheduler_per_batch else None, on_step)}
        val = evaluate(model, val_batches)
        metrics.update(val_loss=val.loss, val_accuracy=val.accuracy, lr=lr)
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    return history
