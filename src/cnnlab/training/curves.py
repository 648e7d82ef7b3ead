"""The learning curves of a run: loss and the task's headline metric per epoch.

The other pictures have modules of their own: tasks/classify_figures.py (confusion matrix,
per-class scores, top losses, reliability), look/featuremaps.py, look/filters.py,
look/gradcam.py and look/receptive_field.py.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..figures import save_figure


def plot_curves(history: list[dict], path: str | Path, metric: str = "accuracy") -> None:
    """Loss and `metric` (the task's headline: accuracy, miou ...) per epoch, training and
    validation side by side."""
    epochs = [m["epoch"] for m in history]
    fig = Figure(figsize=(10, 4))
    for ax, key in zip(fig.subplots(1, 2), ("loss", metric)):
        title = "mean IoU" if key == "miou" else key.replace("_", " ").capitalize()
        for split, label in (("train", "train"), ("val", "validation")):
            if all(f"{split}_{key}" in m for m in history):  # a detector: no val_loss
                ax.plot(epochs, [m[f"{split}_{key}"] for m in history], marker=".",
                        label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path, dpi=120)
