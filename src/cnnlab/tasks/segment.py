"""Semantic segmentation: a class for every pixel (lectures 000 and 001).

Targets are class-index masks (N x H x W, uint8 or long), 255 meaning "ignore this pixel"
(VOC's outlines). Training minimises per-pixel cross-entropy over the pixels that count;
what is tallied on the device is one confusion matrix, from which pixel accuracy, each
class's intersection over union (IoU) and their mean (mIoU) follow:

    IoU(c) = |predicted c AND true c| / |predicted c OR true c|
           = C[c, c] / (sum of row c + sum of column c - C[c, c])

with C[true, predicted] the pixel counts. mIoU averages the classes that occur (in the
truth or the prediction), the way the PASCAL VOC benchmark reports it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.task import Headline
from ..errors import UserError
from ..models.base import AuxOutputs

IGNORE = 255


def confusions(predicted: torch.Tensor, truth: torch.Tensor, classes: int) -> torch.Tensor:
    """N x classes x classes pixel counts, one matrix per image (rows: true, columns:
    predicted), ignored pixels left out, computed on the device without a host sync (no
    boolean indexing, no bincount)."""
    truth, cells = truth.long(), classes * classes + 1  # the last cell of each: dropped
    valid = (truth >= 0) & (truth < classes)
    cell = torch.where(valid, truth * classes + predicted, classes * classes)
    cell = cell + cells * torch.arange(len(truth), device=truth.device).view(-1, 1, 1)
    counts = torch.zeros(len(truth) * cells, dtype=torch.long, device=truth.device)
    counts.scatter_add_(0, cell.flatten(), torch.ones_like(cell.flatten()))
    return counts.view(len(truth), cells)[:, :-1].view(-1, classes, classes)


def confusion(predicted: torch.Tensor, truth: torch.Tensor, classes: int) -> torch.Tensor:
    """The batch's classes x classes pixel counts (see confusions)."""
    return confusions(predicted, truth, classes).sum(dim=0)


def image_mious(matrices: torch.Tensor) -> torch.Tensor:
    """Each image's mean IoU from its confusion matrix, over the classes that occur in it."""
    matrices = matrices.double()
    hits = matrices.diagonal(dim1=1, dim2=2)
    union = matrices.sum(dim=1) + matrices.sum(dim=2) - hits
    present = union > 0
    return (hits / union.clamp_min(1) * present).sum(dim=1) / present.sum(dim=1).clamp_min(1)


def scores(matrix) -> dict:
    """Pixel accuracy, per-class IoU (None for a class absent from truth and prediction) and
    mIoU from a confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    hits = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = hits / union
    present = union > 0
    return {"pixel_accuracy": float(hits.sum() / max(matrix.sum(), 1)),
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou": [float(v) if p else None for v, p in zip(iou, present)]}


@dataclass
class SegmentEvaluation:
    loss: float             # mean cross-entropy per counted pixel
    pixel_accuracy: float
    miou: float
    iou: list               # per class, None where the class never occurs
    confusion: np.ndarray   # classes x classes pixel counts

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "pixel_accuracy": self.pixel_accuracy, "miou": self.miou}


class Tally:
    """An evaluation pass: the confusion matrix and the loss, summed on the device."""

    def __init__(self):
        self.matrix, self.loss_sum, self.pixels = None, 0.0, 0

    def add(self, inputs, logits: torch.Tensor, masks: torch.Tensor) -> None:
        logits, masks = logits.float(), masks.long()
        matrix = confusion(logits.argmax(dim=1), masks, logits.shape[1])
        self.matrix = matrix if self.matrix is None else self.matrix + matrix
        self.loss_sum = self.loss_sum + F.cross_entropy(logits, masks, ignore_index=IGNORE,
                                                        reduction="sum")
        self.pixels = self.pixels + (masks != IGNORE).sum()

    def result(self) -> SegmentEvaluation:
        matrix = self.matrix.cpu().numpy()
        found = scores(matrix)
        return SegmentEvaluation(float(self.loss_sum) / max(int(self.pixels), 1),
                                 found["pixel_accuracy"], found["miou"], found["iou"], matrix)


def dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1 - the soft Dice coefficient (Milletari et al. 2016), averaged over classes:
    2 |P * T| / (|P| + |T|) with P the softmax and T the one-hot truth, ignored pixels left
    out. It weighs a small class's pixels as much as a large one's, where cross-entropy
    counts pixels, so thin or rare objects are not drowned by the background."""
    valid = (masks != IGNORE)[:, None]
    truth = F.one_hot(torch.where(valid[:, 0], masks.long(), 0), logits.shape[1])
    truth = truth.permute(0, 3, 1, 2).to(logits.dtype) * valid
    probabilities = logits.softmax(dim=1) * valid
    overlap = (probabilities * truth).sum(dim=(0, 2, 3))
    sizes = probabilities.sum(dim=(0, 2, 3)) + truth.sum(dim=(0, 2, 3))
    return 1 - (2 * overlap / sizes.clamp_min(1e-6)).mean()


class Segment:
    """Per-pixel cross-entropy over the pixels that count (with `label_smoothing`), plus
    `dice` times the Dice loss; evaluation reports plain cross-entropy."""
    name = "segment"
    headline = Headline("miou", "miou", "{:.2%}")

    def __init__(self, dice: float = 0.0, label_smoothing: float = 0.0):
        self.dice, self.label_smoothing = dice, label_smoothing

    @classmethod
    def from_config(cls, config) -> "Segment":
        return cls(config.dice, config.label_smoothing)

    def targets(self, splits):
        """The data set with its class-index masks as targets (and its mask classes)."""
        if getattr(splits, "mask_classes", None) is None:
            raise UserError(f"data set {splits.name} has no masks to learn from; segmentation "
                            "needs one with a mask per image, e.g. --dataset shapes.")
        swap = lambda split: replace(split, labels=split.masks)  # noqa: E731
        return replace(splits, classes=list(splits.mask_classes), train=swap(splits.train),
                       val=swap(splits.val), test=swap(splits.test))

    def loss(self, outputs, masks: torch.Tensor):
        """(loss, logits); a model with an auxiliary head (DeepLabV3's) adds its loss with
        its weight."""
        def objective(logits):
            loss = F.cross_entropy(logits, masks.long(), ignore_index=IGNORE,
                                   label_smoothing=self.label_smoothing)
            return loss + self.dice * dice_loss(logits, masks) if self.dice else loss
        if isinstance(outputs, AuxOutputs):
            return outputs.weighted(objective), outputs.logits
        return objective(outputs), outputs

    def batch_sums(self, logits: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"confusion": confusion(logits.detach().argmax(dim=1), masks, logits.shape[1])}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        found = scores(sums["confusion"])
        return {"pixel_accuracy": found["pixel_accuracy"], "miou": found["miou"]}

    def accumulator(self) -> Tally:
        return Tally()
