"""The lectures' training loop, as small functions that know nothing of particular models or data.

    for epoch in range(n_epochs):
        for inputs, labels in trainloader:
            y_pred = cnn(inputs)              # 1) feed forward
            loss = loss_func(y_pred, labels)  # 2) compute the loss
            optimizer.zero_grad()             # 3) backpropagation of errors
            loss.backward()
            optimizer.step()                  # 4) update parameters

What the outputs and targets mean (the loss, what is counted, what evaluation reports) is the
task's (task.py); the loop itself is the same for every task. Running totals stay on the
device and are read once per epoch: asking for `loss.item()` every step would make the host
wait for the accelerator every step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..errors import UserError
from ..accel.precision import FP32, Precision
from .task import EvaluationResult, Task


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_device(targets: Any, device) -> Any:
    """Tensors moved to `device` wherever they sit: a tensor of labels, or the lists of dicts
    that boxes and masks come in."""
    if isinstance(targets, torch.Tensor):
        return targets.to(device, non_blocking=True)
    if isinstance(targets, dict):
        return {k: to_device(v, device) for k, v in targets.items()}
    if isinstance(targets, (list, tuple)):
        return type(targets)(to_device(v, device) for v in targets)
    return targets


class NonFiniteLoss(UserError):
    """The loss became nan or inf; training must stop before the weights are saved."""


@dataclass
class EpochTally:
    """Running sums of one training epoch, kept on the device so no step waits for the host.

    `sums` are the task's own (e.g. correct answers). The tally is part of a mid-epoch
    checkpoint, so an epoch resumed after a crash reports the same loss and metrics as one
    that ran straight through. `finite` turns False at the first non-finite loss and
    `first_bad_step` remembers where, still without a host sync.
    """
    loss_sum: torch.Tensor
    seen: torch.Tensor
    finite: torch.Tensor
    first_bad_step: torch.Tensor
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    lr: float | None = None  # the learning rate the epoch started with

    @classmethod
    def new(cls, device) -> "EpochTally":
        zero = lambda dtype: torch.zeros((), device=device, dtype=dtype)  # noqa: E731
        return cls(zero(torch.float32), zero(torch.long),
                   torch.ones((), device=device, dtype=torch.bool), zero(torch.long) - 1)

    def add(self, loss: torch.Tensor, sums: dict[str, torch.Tensor], count: int) -> None:
        self.steps += 1
        ok = torch.isfinite(loss.detach())
        self.first_bad_step = torch.where(self.finite & ~ok, self.steps, self.first_bad_step)
        self.finite &= ok
        self.loss_sum += loss.detach() * count
        for name, value in sums.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.seen += count

    def check(self, epoch: int | str = "?") -> None:
        """One host sync: raise NonFiniteLoss naming the epoch and step of the first bad loss."""
        if not bool(self.finite):
            raise NonFiniteLoss(
                f"the loss became nan or inf at epoch {epoch}, step {int(self.first_bad_step)}; "
                "training stopped and no checkpoint with those weights was written (try a lower "
                "--lr or --clip-grad).")

    def metrics(self, task: Task) -> dict:
        seen = int(self.seen)
        own = task.epoch_metrics({k: v.tolist() for k, v in self.sums.items()}, seen)
        return {"train_loss": float(self.loss_sum) / seen,
                **{f"train_{k}": v for k, v in own.items()},
                "seconds": self.seconds, "images_per_second": seen / max(self.seconds, 1e-9)}

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict, device) -> "EpochTally":
        move = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        state = dict(state)
        if "correct" in state:  # written before the task abstraction: classification's one sum
            state["sums"] = {"correct": state.pop("correct")}
        return cls(**{k: ({n: move(t) for n, t in v.items()} if k == "sums" else move(v))
                      for k, v in state.items()})


# How often, in steps, the device-side finite flag is read when nothing else reads it.
CHECK_EVERY = 100


def optimizer_step(optimizer, loss: torch.Tensor, model: nn.Module, precision=FP32,
                   clip_grad: float | None = None) -> None:
    """One update from `loss`: gradients (scaled for fp16), clipped to norm `clip_grad` over
    `model`'s parameters when asked, then the optimiser's step."""
    optimizer.zero_grad(set_to_none=True)
    precision.backward(loss)
    if clip_grad:
        precision.unscale(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    precision.step(optimizer)


def train_one_epoch(model: nn.Module, batches: Iterable, task: Task, optimizer,
                    scheduler=None, on_step: Callable[[EpochTally], None] | None = None, *,
                    clip_grad: float | None = None, tally: EpochTally | None = None,
                    epoch: int | str = "?", reduce: Callable[[EpochTally], None] | None = None,
                    precision: Precision = FP32) -> dict:
    """One pass over `batches` in training mode. `scheduler`, if given, steps every batch.

    `task` turns outputs and targets into the loss and the epoch's sums (task.py); `tally`
    continues an epoch resumed part-way (the batches then start where it stopped);
    `reduce(tally)` sums the tally across processes before it is checked and reported;
    `precision` runs the forward pass in its number format (accel/precision.py).
    """
    device = _device_of(model)
    model.train()  # dropout active, batch norm uses and updates batch statistics
    tally = tally or EpochTally.new(device)
    if tally.lr is None:
        tally.lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter() - tally.seconds
    # A detector computes its losses inside, from the targets: the task says how to call it.
    forward = getattr(task, "train_forward", lambda net, inputs, targets: net(inputs))
    for inputs, targets in batches:
        inputs = inputs.to(device, non_blocking=True)
        targets = to_device(targets, device)
        with precision.autocast():
            loss, outputs = task.loss(forward(model, inputs, targets), targets)
        optimizer_step(optimizer, loss, model, precision, clip_grad)
        if scheduler is not None:
            scheduler.step()
        tally.add(loss, task.batch_sums(outputs, targets), len(targets))
        tally.seconds = time.perf_counter() - start
        if tally.steps % CHECK_EVERY == 0:
            tally.check(epoch)
        if on_step is not None:
            on_step(tally)
    tally.seconds = time.perf_counter() - start
    if reduce is not None:
        reduce(tally)
    tally.check(epoch)
    return tally.metrics(task) | {"lr": tally.lr}


# inference_mode, not no_grad: no version counters or view tracking either, bookkeeping that
# counts for small models at batch 1 (Lightning's predict does the same).
@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable, task: Task, precision: Precision = FP32,
             accumulator=None) -> EvaluationResult:
    """The task's evaluation of `model` over `batches`, in evaluation mode, without building a
    graph. `accumulator` replaces the task's own, to gather more on the same pass."""
    device = _device_of(model)
    gather = accumulator if accumulator is not None else task.accumulator()
    was_training = model.training
    model.eval()  # dropout off, batch norm uses its running statistics
    try:
        for inputs, targets in batches:
            with precision.autocast():
                outputs = model(inputs.to(device, non_blocking=True))
            gather.add(inputs, outputs, to_device(targets, device))
    finally:
        model.train(was_training)
    return gather.result()


def fit(model: nn.Module, train_batches: Iterable, val_batches: Iterable, *, epochs: int,
        task: Task, optimizer, scheduler=None, scheduler_per_batch: bool = False,
        start_epoch: int = 1, tally: EpochTally | None = None,
        clip_grad: float | None = None, reduce: Callable[[EpochTally], None] | None = None,
        on_epoch_end: Callable[[dict], None] | None = None,
        on_step: Callable[[int, EpochTally], None] | None = None,
        precision: Precision = FP32, eval_model: nn.Module | None = None) -> list[dict]:
    """Train for `epochs` epochs numbered from `start_epoch`, validating after each; returns
    one metrics dict per epoch: train_<metric> from the epoch's tally, val_<metric> from the
    task's evaluation.

    `tally` resumes the first epoch part-way; `reduce(tally)` sums it across processes before
    it is reported. `on_step(epoch, tally)` and `on_epoch_end(metrics)` are where a caller
    checkpoints and logs; the engine itself writes nothing. `eval_model`, if given, is what is
    validated instead of `model` (an average of its weights, test-time augmentation ...).
    """
    history = []
    for epoch in range(start_epoch, start_epoch + epochs):
        step = None if on_step is None else (lambda t, e=epoch: on_step(e, t))
        epoch_tally = tally if epoch == start_epoch and tally is not None else EpochTally.new(
            _device_of(model))
        metrics = {"epoch": epoch, **train_one_epoch(
            model, train_batches, task, optimizer, scheduler if scheduler_per_batch else None,
            step, clip_grad=clip_grad, tally=epoch_tally, epoch=epoch, reduce=reduce,
            precision=precision)}
        val = evaluate(model if eval_model is None else eval_model, val_batches, task,
                       precision=precision)
        metrics.update({f"val_{k}": v for k, v in val.metrics().items()})
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    return history
