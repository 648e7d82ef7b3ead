"""What an evaluation shows beyond one accuracy number: the worst mistakes and calibration.

- Top losses: the misclassified examples with the highest cross-entropy loss, i.e. where the
  model was most confidently wrong. Looking at them finds mislabelled images, confusable
  classes and preprocessing bugs faster than any metric (fast.ai's `plot_top_losses`).
- Reliability (Guo, Pleiss, Sun & Weinberger 2017, 'On calibration of modern neural
  networks'): predictions are grouped by confidence (the top softmax probability) into equal
  bins; a calibrated model is right 80% of the time when it says 0.8. The expected
  calibration error (ECE) is the gap |accuracy - confidence| averaged over bins, weighted by
  how many predictions fall in each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import Preprocess
from ..engine.loop import evaluate
from ..accel.precision import FP32, Precision
from .classify import Classify, Collect, Evaluation

TOP_K = 16   # mistakes kept for the top-losses picture and report
BINS = 10    # confidence bins of the reliability diagram


@dataclass
class Mistake:
    index: int            # position in the evaluated split
    true: int
    predicted: int
    loss: float           # cross-entropy of this example: -log p(true class)
    confidence: float     # probability of the predicted class
    image: torch.Tensor   # uint8 C x H x W, the input as the model saw it

    def to_dict(self, classes: list[str]) -> dict:
        return {"index": self.index, "true": classes[self.true],
                "predicted": classes[self.predicted], "loss": self.loss,
                "confidence": self.confidence}


def denormalise(inputs: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    """Model input back to uint8 pixels (undoing the mean/std normalisation), for showing."""
    shape = (1, -1, 1, 1)
    mean = torch.tensor(preprocess.mean, dtype=torch.float32).view(shape)
    std = torch.tensor(preprocess.std, dtype=torch.float32).view(shape)
    pixels = inputs.float().cpu() * std + mean
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8)


def _worst(kept: list[Mistake], candidates: list[Mistake], top_k: int) -> list[Mistake]:
    # Ties keep the earlier example first, so the order is reproducible.
    return sorted(kept + candidates, key=lambda m: (-m.loss, m.index))[:top_k]


def _mistakes(logits: torch.Tensor, labels: torch.Tensor, first: int) -> list[Mistake]:
    """The batch's misclassified examples, numbered from `first`, without images yet."""
    losses = F.cross_entropy(logits, labels, reduction="none")
    probabilities = logits.softmax(dim=1)
    predicted = logits.argmax(dim=1)
    return [Mistake(first + i, int(labels[i]), int(predicted[i]), float(losses[i]),
                    float(probabilities[i, predicted[i]]), None)
            for i in (predicted != labels).nonzero().flatten().tolist()]


class WithMistakes(Collect):
    """Classification's evaluation, also keeping the `top_k` highest-loss mistakes with their
    images (the images of a large test set are never all held at once)."""

    def __init__(self, preprocess: Preprocess, top_k: int = TOP_K):
        super().__init__()
        self.preprocess, self.top_k, self.worst, self.seen = preprocess, top_k, [], 0

    def add(self, inputs, outputs, labels) -> None:
        super().add(inputs, outputs, labels)
        self.worst = _worst(self.worst, _mistakes(self.logits[-1].cpu(), labels.cpu(), self.seen),
                            self.top_k)
        for mistake in self.worst:
            if mistake.image is None:  # from this batch: decoded once it makes the list
                mistake.image = denormalise(inputs[mistake.index - self.seen][None],
                                            self.preprocess)[0]
        self.seen += len(labels)


def examine(model: nn.Module, batches: Iterable, preprocess: Preprocess,
            top_k: int = TOP_K, precision: Precision = FP32) -> tuple[Evaluation, list[Mistake]]:
    """engine.evaluate's numbers and the `top_k` highest-loss mistakes, in one pass; the
    forward pass in `precision`'s number format."""
    gather = WithMistakes(preprocess, top_k)
    return evaluate(model, batches, Classify(), precision, accumulator=gather), gather.worst


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> dict:
    """Per confidence bin: how many predictions, their mean confidence and their accuracy;
    and the expected calibration error over all bins."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double().numpy()
    confidence = confidence.double().numpy()
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin b holds (edges[b], edges[b+1]]; a confidence of exactly 0 goes in the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(accuracy - mean_confidence), 0.0)
    ece = float((counts * gaps).sum() / max(counts.sum(), 1))
    return {"edges": edges.tolist(), "counts": counts.tolist(),
            "accuracy": [None if c == 0 else float(a) for a, c in zip(accuracy, counts)],
            "confidence": [None if c == 0 else float(m) for m, c in zip(mean_confidence, counts)],
            "ece": ece}
