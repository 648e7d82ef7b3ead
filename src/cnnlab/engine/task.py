"""What the engine asks of a task: the only place where the loop meets what a model's outputs
and a data set's targets mean.

The engine (loop.py) moves batches, steps the optimiser, keeps running sums on the device and
calls these methods; it never looks inside an output or a target itself. Classification
(tasks/classify.py) is one implementation; a segmentation or detection task is another, and
plugs into the same loop, checkpoints and exact resume.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class Headline:
    """The metric a progress line shows beside the loss: its key in the metrics, a short
    label and a format, e.g. Headline("accuracy", "acc", "{:.2%}")."""
    key: str
    label: str
    format: str

    def show(self, value: float) -> str:
        return self.format.format(value)


class EvaluationResult(Protocol):
    def metrics(self) -> dict[str, float]:
        """The numbers one evaluation reports, unprefixed: {"loss": ..., "accuracy": ...}.
        fit() records them as val_<name> in metrics.jsonl."""


class Accumulator(Protocol):
    """Gathers one evaluation pass batch by batch (the engine never holds all outputs)."""

    def add(self, inputs: torch.Tensor, outputs: Any, targets: Any) -> None: ...

    def result(self) -> EvaluationResult: ...


class Task(Protocol):
    name: str       # as given to `cnnlab train --task` and recorded in config.json
    headline: Headline

    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, Any]:
        """(the training objective, the outputs that batch_sums should see)."""

    def batch_sums(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """Device tensors added up over a training epoch, e.g. {"correct": ...}; no host sync."""

    def epoch_metrics(self, sums: dict[str, Any], seen: int) -> dict[str, float]:
        """The epoch's own metrics from those sums (read back as numbers, or nested lists for
        a matrix), unprefixed; recorded as train_<name>."""

    def accumulator(self) -> Accumulator:
        """A fresh accumulator for one evaluation pass."""

    # Optional: `train_forward(model, inputs, targets)`, the training step's forward pass
    # where it is not model(inputs) (torchvision's detectors take the targets and return
    # their losses); evaluation always calls model(inputs).
    # Optional: `fit`, with engine.fit's signature, for a task whose training is not the
    # lectures' loop; the session then calls it instead, with the same checkpoint, progress
    # and metrics hooks (on_step, on_epoch_end), so the run folder stays the same.
