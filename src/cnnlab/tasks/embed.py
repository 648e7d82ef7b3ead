"""Metric learning (face recognition's recipe, on any images): an embedding per image, learned
so that images of one identity lie close together, and judged on identities never trained on.

The model is models/embedding.py's: a classification backbone's features, pooled, projected
and L2-normalised. Training minimises ArcFace or batch-hard triplet loss (metric_losses.py).
With --holdout-classes the named classes are taken out of training and validation, and the
test split holds only them: verification (are two images the same identity? ROC over every
pair's cosine similarity, AUC, TAR at a fixed FAR, the threshold of best accuracy) and
identification (top-1 against a gallery of one image per identity) then measure how well the
embedding carries over to identities it never saw. What evaluate shows is embed_report.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..data.catalog import DataSplits, Split
from ..engine.task import Headline
from ..errors import UserError
from ..models.registry import model_info, plan_input
from .metric_losses import LOSSES, arcface_loss, triplet_loss

MAX_PAIRS = 500_000   # pairs scored for verification; more images: a seeded sample
PAIR_SEED = 0
FARS = (1e-2, 1e-3)   # false accept rates at which the true accept rate is reported


def far_key(far: float) -> str:
    return f"tar_at_far_{far:.0e}".replace("e-0", "e-")  # tar_at_far_1e-2


def roc(scores: np.ndarray, same: np.ndarray):
    """(fpr, tpr, thresholds) of 'same if score >= threshold' at every distinct score, highest
    first, after a first point (0, 0) at +inf: sklearn's roc_curve without dropping points,
    here so that training's validation needs no scikit-learn."""
    order = np.argsort(-scores, kind="mergesort")
    scores, same = scores[order], same[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # each distinct score's end
    tps = np.cumsum(same)[last]
    fps = (last + 1) - tps
    positives, negatives = max(tps[-1], 1.0), max(fps[-1], 1.0)
    return (np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives],
            np.r_[np.inf, scores[last]])


def pairs(count: int, seed: int = PAIR_SEED, limit: int = MAX_PAIRS):
    """Index pairs (i < j): all of them, or `limit` drawn at random (seeded) when more."""
    total = count * (count - 1) // 2
    if total <= limit:
        return np.triu_indices(count, k=1)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, count, size=(2, limit))
    keep = i != j
    return np.minimum(i, j)[keep], np.maximum(i, j)[keep]


def verification(embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Pair verification and gallery identification metrics of L2-normalised `embeddings`."""
    e = embeddings.double().cpu()  # the scores in float64, as the report's
    y = labels.cpu().numpy()
    i, j = pairs(len(y))
    scores = (e[torch.from_numpy(np.asarray(i))] * e[torch.from_numpy(np.asarray(j))]).sum(1)
    scores, same = scores.numpy().astype(np.float64), y[i] == y[j]
    fpr, tpr, thresholds = roc(scores, same)
    positives, negatives = int(same.sum()), int((~same).sum())
    accuracy = (tpr * positives + (1 - fpr) * negatives) / max(positives + negatives, 1)
    best = int(np.argmax(accuracy))
    metrics = {"auc": float(np.trapezoid(tpr, fpr)) if positives and negatives else float("nan"),
               **{far_key(f): float(tpr[fpr <= f].max()) for f in FARS},
               "threshold": float(thresholds[best]) if best else 1.0,
               "verification_accuracy": float(accuracy[best]),
               "top1": identification(e, labels.cpu()),
               "pairs": float(len(scores)), "images": float(len(y))}
    return metrics


def identification(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of the probes against a gallery of each identity's first image."""
    gallery, seen = [], set()
    for index, label in enumerate(labels.tolist()):
        if label not in seen:
            seen.add(label)
            gallery.append(index)
    probes = torch.ones(len(labels), dtype=torch.bool)
    probes[gallery] = False
    if not probes.any():
        return float("nan")
    nearest = (embeddings[probes] @ embeddings[gallery].t()).argmax(dim=1)
    return (labels[gallery][nearest] == labels[probes]).float().mean().item()


@dataclass
class Evaluation:
    embeddings: torch.Tensor  # N x dim, on the CPU
    labels: torch.Tensor
    numbers: dict

    def metrics(self) -> dict[str, float]:
        return dict(self.numbers)


class Collect:
    def __init__(self):
        self.embeddings, self.labels = [], []

    def add(self, inputs, outputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.embeddings.append(outputs.float().cpu())
        self.labels.append(labels.cpu())

    def result(self) -> Evaluation:
        embeddings, labels = torch.cat(self.embeddings), torch.cat(self.labels)
        return Evaluation(embeddings, labels, verification(embeddings, labels))


def holdout(splits: DataSplits, names: str) -> DataSplits:
    """`splits` with the classes `names` (names or indices, comma-separated) out of training
    and validation, relabelled 0.. in order, and a test split of every image of those classes
    (from all three splits), labelled by their place in the held-out list."""
    if isinstance(splits.train, Split) and splits.train.targets is not None:
        raise UserError(f"data set {splits.name} holds boxes, not one class per image; "
                        "--task embed needs one identity per image.")
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        return splits
    if not all(isinstance(s, Split) for s in (splits.train, splits.val, splits.test)):
        raise UserError("--holdout-classes needs a data set held in memory (a built-in one).")
    index = {name: i for i, name in enumerate(splits.classes)}
    held = []
    for name in wanted:
        if name not in index and not (name.isdigit() and int(name) < len(splits.classes)):
            raise UserError(f"--holdout-classes names '{name}', which data set {splits.name} "
                            f"lacks; its classes: {', '.join(splits.classes)}.")
        held.append(index[name] if name in index else int(name))
    held = sorted(set(held))
    kept = [c for c in range(len(splits.classes)) if c not in held]
    if len(kept) < 2:
        raise UserError(f"--holdout-classes leaves {len(kept)} class(es) to train on; "
                        "metric learning needs at least 2.")
    relabel = torch.full((len(splits.classes),), -1, dtype=torch.long)
    relabel[kept] = torch.arange(len(kept))
    relabel[held] = torch.arange(len(held))

    def part(split: Split, classes) -> Split:
        chosen = torch.isin(split.labels, torch.tensor(classes))
        return Split(split.images[chosen], relabel[split.labels[chosen]].to(split.labels.dtype))

    parts = [part(s, held) for s in (splits.train, splits.val, splits.test)]
    test = Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    return dataclasses.replace(splits, classes=[splits.classes[c] for c in kept],
                               train=part(splits.train, kept), val=part(splits.val, kept),
                               test=test)


class Embed:
    """ArcFace or batch-hard triplet loss in training; verification AUC as the headline."""
    name = "embed"
    headline = Headline("auc", "auc", "{:.4f}")

    def __init__(self, metric_loss: str = "arcface", holdout_classes: str = ""):
        if metric_loss not in LOSSES:
            raise UserError(f"unknown --metric-loss '{metric_loss}'; choose one of: "
                            f"{', '.join(LOSSES)}.")
        self.metric_loss, self.holdout_classes = metric_loss, holdout_classes

    @classmethod
    def from_config(cls, config) -> "Embed":
        return cls(getattr(config, "metric_loss", "arcface"),
                   getattr(config, "holdout_classes", "") or "")

    def targets(self, splits: DataSplits) -> DataSplits:
        return holdout(splits, self.holdout_classes)

    def plan_input(self, info, splits, image_size, kwargs: dict):
        """The backbone's input plan (its size and stem), for the embedding network."""
        backbone = model_info(kwargs.get("backbone", "lenet5"))
        if backbone.task != "classify":
            raise UserError(f"the embedding's backbone must be a classification model; "
                            f"{backbone.name} is made for --task {backbone.task}.")
        own = {k: v for k, v in kwargs.items() if k == "stem"}
        shape, planned = plan_input(backbone, image_size, own)
        return shape, {**kwargs, **planned}

    def train_forward(self, model, inputs, labels):
        embeddings = model(inputs)
        if self.metric_loss == "arcface":
            return embeddings, model.class_cosines(embeddings)
        return embeddings, None

    def loss(self, outputs, labels: torch.Tensor):
        """(loss, embeddings). In training `outputs` is (embeddings, class cosines or None)."""
        embeddings, cosines = outputs if isinstance(outputs, tuple) else (outputs, None)
        if self.metric_loss == "arcface" and cosines is not None:
            return arcface_loss(cosines, labels), embeddings
        return triplet_loss(embeddings, labels), embeddings

    def batch_sums(self, embeddings: torch.Tensor, labels: torch.Tensor):
        """How many images' nearest other image in the batch is of their own class."""
        e = embeddings.detach().float()
        similarity = e @ e.t()
        similarity.fill_diagonal_(-2.0)
        nearest = similarity.argmax(dim=1)
        return {"nearest_same": (labels[nearest] == labels).sum()}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        return {"batch_top1": sums["nearest_same"] / seen}

    def accumulator(self) -> Collect:
        return Collect()
