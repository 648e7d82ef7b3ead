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

from ..errors import UserError
from ..models.base import AuxOutputs
from ..accel.precision import FP32, Precision


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


class NonFiniteLoss(UserError):
    """The loss became nan or inf; training must stop before the weights are saved."""


@dataclass
class EpochTally:
    """Running sums of one training epoch, kept on the device so no step waits for the host.

    It is part of a mid-epoch checkpoint, so an epoch resumed after a crash reports the same
    loss and accuracy as one that ran straight through. `finite` turns False at the first
    non-finite loss and `first_bad_step` remembers where, still without a host sync.
    """
    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: torch.Tensor
    finite: torch.Tensor
    first_bad_step: torch.Tensor
    steps: int = 0
    seconds: float = 0.0
    lr: float | None = None  # the learning rate the epoch started with

    @classmethod
    def new(cls, device) -> "EpochTally":
        zero = lambda dtype: torch.zeros((), device=device, dtype=dtype)  # noqa: E731
        return cls(zero(torch.float32), zero(torch.long), zero(torch.long),
                   torch.ones((), device=device, dtype=torch.bool), zero(torch.long) - 1)

    def add(self, loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.steps += 1
        ok = torch.isfinite(loss.detach())
        self.first_bad_step = torch.where(self.finite & ~ok, self.steps, self.first_bad_step)
        self.finite &= ok
        self.loss_sum += loss.detach() * len(labels)
        self.correct += (outputs.detach().argmax(dim=1) == labels).sum()
        self.seen += len(labels)

    def check(self, epoch: int | str = "?") -> None:
        """One host sync: raise NonFiniteLoss naming the epoch and step of the first bad loss."""
        if not bool(self.finite):
            raise NonFiniteLoss(
                f"the loss became nan or inf at epoch {epoch}, step {int(self.first_bad_step)}; "
                "training stopped and no checkpoint with those weights was written (try a lower "
                "--lr or --clip-grad).")

    def metrics(self) -> dict:
        seen = int(self.seen)
        return {"train_loss": float(self.loss_sum) / seen, "train_accuracy": int(self.correct) / seen,
                "seconds": self.seconds, "images_per_second": seen / max(self.seconds, 1e-9)}

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict, device) -> "EpochTally":
        return cls(**{k: v.to(device) if isinstance(v, torch.Tensor) else v
                      for k, v in state.items()})


# How often, in steps, the device-side finite flag is read when nothing else reads it.
CHECK_EVERY = 100


def train_one_epoch(model: nn.Module, batches: Iterable, loss_fn: Callable, optimizer,
                    scheduler=None, on_step: Callable[[EpochTally], None] | None = None, *,
                    clip_grad: float | None = None, tally: EpochTally | None = None,
                    epoch: int | str = "?", reduce: Callable[[EpochTally], None] | None = None,
                    precision: Precision = FP32) -> dict:
    """One pass over `batches` in training mode. `scheduler`, if given, steps every batch.

    `tally` continues an epoch resumed part-way (the batches then start where it stopped);
    `reduce(tally)` sums the tally across processes before it is checked and reported;
    `precision` runs the forward pass in its number format (accel/precision.py).
    """
    device = _device_of(model)
    model.train()  # dropout active, batch norm uses and updates batch statistics
    tally = tally or EpochTally.new(device)
    if tally.lr is None:
        tally.lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter() - tally.seconds
    for inputs, labels in batches:
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with precision.autocast():
            loss, outputs = training_loss(model(inputs), labels, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss)
        if clip_grad:
            precision.unscale(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        precision.step(optimizer)
        if scheduler is not None:
            scheduler.step()
        tally.add(loss, outputs, labels)
        tally.seconds = time.perf_counter() - start
        if tally.steps % CHECK_EVERY == 0:
            tally.check(epoch)
        if on_step is not None:
            on_step(tally)
    tally.seconds = time.perf_counter() - start
    if reduce is not None:
        reduce(tally)
    tally.check(epoch)
    return tally.metrics() | {"lr": tally.lr}


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    labels: torch.Tensor         # true classes, on the CPU
    predictions: torch.Tensor    # predicted classes
    probabilities: torch.Tensor  # softmax outputs, N x classes


# inference_mode, not no_grad: no version counters or view tracking either, bookkeeping that
# counts for small models at batch 1 (Lightning's predict does the same).
@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable, loss_fn: Callable | None = None,
             precision: Precision = FP32) -> Evaluation:
    """Loss, accuracy and predictions in evaluation mode, without building a graph."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _device_of(model)
    was_training = model.training
    model.eval()  # dropout off, batch norm uses its running statistics
    try:
        logits, labels = [], []
        for inputs, target in batches:
            with precision.autocast():  # logits back in float32 for an exact loss and softmax
                logits.append(model(inputs.to(device, non_blocking=True)).float())
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
        loss_fn: Callable | None = None, start_epoch: int = 1, tally: EpochTally | None = None,
        clip_grad: float | None = None, reduce: Callable[[EpochTally], None] | None = None,
        on_epoch_end: Callable[[dict], None] | None = None,
        on_step: Callable[[int, EpochTally], None] | None = None,
        precision: Precision = FP32, eval_model: nn.Module | None = None) -> list[dict]:
    """Train for `epochs` epochs numbered from `start_epoch`, validating after each; returns
    one metrics dict per epoch.

    train_loss is the objective optimised (`loss_fn`, label smoothing included); val_loss is
    plain cross-entropy, comparable across recipes and with the test loss. `tally` resumes the
    first epoch part-way; `reduce(tally)` sums it across processes before it is reported.
    `on_step(epoch, tally)` and `on_epoch_end(metrics)` are where a caller checkpoints and
    logs; the engine itself writes nothing. `eval_model`, if given, is what is validated
    instead of `model` (an average of its weights, test-time augmentation ...).
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = []
    for epoch in range(start_epoch, start_epoch + epochs):
        step = None if on_step is None else (lambda t, e=epoch: on_step(e, t))
        epoch_tally = tally if epoch == start_epoch and tally is not None else EpochTally.new(
            _device_of(model))
        metrics = {"epoch": epoch, **train_one_epoch(
            model, train_batches, loss_fn, optimizer, scheduler if scheduler_per_batch else None,
            step, clip_grad=clip_grad, tally=epoch_tally, epoch=epoch, reduce=reduce,
            precision=precision)}
        val = evaluate(model if eval_model is None else eval_model, val_batches,
                       precision=precision)
        metrics.update(val_loss=val.loss, val_accuracy=val.accuracy)
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    return history
