"""Pictures of an evaluation: the confusion matrix, the per-class report, the top losses and
the reliability diagram.

The numbers come from infer/evaluate.py and diagnostics.py; each function here draws a
matplotlib Figure, which the caller saves (figures.save_figure) or embeds (look/report.py);
plot_confusion saves its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from .diagnostics import Mistake
from ..figures import image_to_float, save_figure


def plot_confusion(matrix, classes: list[str], path: str | Path) -> None:
    """Rows are true classes, columns predictions; each cell shows its count."""
    size = max(4, 0.5 * len(classes) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=classes).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45, text_kw={"fontsize": 8})
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")  # rotated names end under their column
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    save_figure(fig, path, dpi=120)


def per_class_figure(per_class: list[dict]) -> Figure:
    """Precision, recall and F1 side by side for every class, support under its name."""
    names = [f"{row['class']}\n(n={row['support']})" for row in per_class]
    positions = np.arange(len(per_class))
    fig = Figure(figsize=(max(5.0, 0.9 * len(per_class) + 2), 3.6))
    ax = fig.subplots()
    for offset, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1")):
        ax.bar(positions + offset, [row[key] for row in per_class], width=0.26, label=key)
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Per-class precision, recall and F1")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def top_losses_figure(mistakes: list[Mistake], classes: list[str], columns: int = 4) -> Figure:
    """The worst mistakes, highest loss first (left to right, then down). Each image has axes
    of its own, not a tile of one mosaic: its three-line caption needs the room above it."""
    rows = max(1, -(-len(mistakes) // columns))
    fig = Figure(figsize=(2.3 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, mistake in zip(axes.flat, mistakes):
        ax.imshow(image_to_float(mistake.image), interpolation="nearest")
        ax.set_title(f"true {classes[mistake.true]}\npredicted {classes[mistake.predicted]}\n"
                     f"loss {mistake.loss:.2f}, p={mistake.confidence:.2f}", fontsize=8)
    if not mistakes:
        axes[0, 0].text(0.5, 0.5, "no misclassified examples", ha="center", va="center")
    fig.suptitle("Top losses: misclassified, highest loss first", fontsize=10)
    return fig


def reliability_figure(bins: dict) -> Figure:
    """Accuracy against confidence per bin; the diagonal is perfect calibration, bars below
    it mean over-confidence. The lower panel shows how many predictions each bin holds."""
    edges = np.asarray(bins["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    accuracy = [a if a is not None else 0.0 for a in bins["accuracy"]]
    fig = Figure(figsize=(4.6, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres, accuracy, width=width, edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability diagram (ECE {bins['ece']:.3f})", fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, bins["counts"], width=width, color="grey", edgecolor="black")
    bottom.set_xlabel("confidence (top softmax probability)")
    bottom.set_ylabel("count")
    bottom.set_xlim(0, 1)
    return fig
