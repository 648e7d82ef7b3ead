"""Pictures of an evaluation: the per-class report, the top losses and the reliability diagram.

The numbers come from infer/evaluate.py and diagnostics.py; each function here only draws a
matplotlib figure, which the caller saves (figures.save_figure) or embeds (look/report.py).
"""
from __future__ import annotations

import numpy as np

from .diagnostics import Mistake
from ..figures import image_to_float


def _plt():
    from ..figures import plt  # Agg is selected there, before pyplot is first imported
    return plt


def per_class_figure(per_class: list[dict]):
    """Precision, recall and F1 side by side for every class, support under its name."""
    plt = _plt()
    names = [f"{row['class']}\n(n={row['support']})" for row in per_class]
    positions = np.arange(len(per_class))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(per_class) + 2), 3.6))
    for offset, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1")):
        ax.bar(positions + offset, [row[key] for row in per_class], width=0.26, label=key)
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Per-class precision, recall and F1")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def top_losses_figure(mistakes: list[Mistake], classes: list[str], columns: int = 4):
    """The worst mistakes, highest loss first (left to right, then down)."""
    plt = _plt()
    rows = max(1, -(-len(mistakes) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.6 * rows), squeeze=False)
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


def reliability_figure(bins: dict):
    """Accuracy against confidence per bin; the diagonal is perfect calibration, bars below
    it mean over-confidence. The lower panel shows how many predictions each bin holds."""
    plt = _plt()
    edges = np.asarray(bins["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    accuracy = [a if a is not None else 0.0 for a in bins["accuracy"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
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
