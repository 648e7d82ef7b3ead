"""Whole-image classification: one label per image, cross-entropy, accuracy.

The lectures' task and cnnlab's first: what the engine asks of a task (engine/task.py) for
images that each carry one class index. The evaluation's diagnostics (top losses,
calibration) are in diagnostics.py, its pictures in classify_figures.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine.task import Headline
from ..errors import UserError
from ..models.base import AuxOutputs


@dataclass
class Evaluation:
    loss: float                  # plain cross-entropy, comparable across recipes
    accuracy: float
    labels: torch.Tensor         # true classes, on the CPU
    predictions: torch.Tensor    # predicted classes
    probabilities: torch.Tensor  # softmax outputs, N x classes
    top5_accuracy: float | None = None  # 003's top-5: the true class among the five best

    def metrics(self) -> dict[str, float]:
        top5 = {} if self.top5_accuracy is None else {"top5_accuracy": self.top5_accuracy}
        return {"loss": self.loss, "accuracy": self.accuracy, **top5}


class Collect:
    """Every logit and label of the pass (N x classes is small next to the images)."""

    def __init__(self):
        self.logits, self.labels = [], []

    def add(self, inputs, outputs: torch.Tensor, labels: torch.Tensor) -> None:
        # float32 logits whatever the number format, for an exact loss and softmax
        self.logits.append(outputs.float())
        self.labels.append(labels)

    def result(self) -> Evaluation:
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        predictions = logits.argmax(dim=1)
        top5 = None  # with five classes or fewer every answer is in the top five
        if logits.shape[1] > 5:
            top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(dim=1)
            top5 = top5.float().mean().item()
        return Evaluation(loss=F.cross_entropy(logits, labels).item(),
                          accuracy=(predictions == labels).float().mean().item(),
                          labels=labels.cpu(), predictions=predictions.cpu(),
                          probabilities=logits.softmax(dim=1).cpu(), top5_accuracy=top5)


class Classify:
    """Training minimises cross-entropy (with `label_smoothing`, if any); evaluation reports
    plain cross-entropy and accuracy, so that runs with different recipes compare."""
    name = "classify"
    headline = Headline("accuracy", "acc", "{:.2%}")

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    @classmethod
    def from_config(cls, config) -> "Classify":
        return cls(config.label_smoothing)

    def targets(self, splits):
        """A data set's class labels are already what classification learns from; a set of
        boxes has none (its per-image labels only stratify the split)."""
        if getattr(splits.train, "targets", None) is not None:
            raise UserError(f"data set {splits.name} holds boxes, not one class per image; "
                            "train it with --task detect (or --task instance).")
        if len(splits.classes) < 2:
            raise UserError(f"data set {splits.name} has one class ({splits.classes[0]}); "
                            "telling classes apart needs at least two.")
        if self.name == "classify" and getattr(getattr(splits.train, "images", None), "ndim",
                                               4) == 5:
            raise UserError(f"data set {splits.name} holds clips, not images; train it with "
                            "--task video.")
        return splits

    def loss(self, outputs, labels: torch.Tensor):
        """(loss, logits). A model with auxiliary classifiers (GoogLeNet) returns AuxOutputs
        in training mode; each side head's loss is added with its weight, as its paper
        trains it."""
        objective = lambda logits: F.cross_entropy(  # noqa: E731
            logits, labels, label_smoothing=self.label_smoothing)
        if isinstance(outputs, AuxOutputs):
            return outputs.weighted(objective), outputs.logits
        return objective(outputs), outputs

    def batch_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"correct": (logits.detach().argmax(dim=1) == labels).sum()}

    def epoch_metrics(self, sums: dict[str, float], seen: int) -> dict[str, float]:
        return {"accuracy": sums["correct"] / seen}

    def accumulator(self) -> Collect:
        return Collect()

