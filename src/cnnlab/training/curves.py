"""Pictures of a run: learning curves and the confusion matrix.

The other pictures have modules of their own: tasks/classify_figures.py (per-class scores,
top losses, reliability), look/featuremaps.py, look/filters.py, look/gradcam.py and
look/receptive_field.py.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no screen is needed, or wanted, on a server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_write_bytes  # noqa: E402


def _save(fig, path: str | Path) -> None:
    import io
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss and accuracy per epoch, training and validation side by side."""
    epochs = [m["epoch"] for m in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((loss_ax, "loss", "Loss"), (acc_ax, "accuracy", "Accuracy")):
        ax.plot(epochs, [m[f"train_{key}"] for m in history], marker=".", label="train")
        ax.plot(epochs, [m[f"val_{key}"] for m in history], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_confusion(matrix, classes: list[str], path: str | Path) -> None:
    """Rows are true classes, columns predictions; each cell shows its count."""
    matrix = np.asarray(matrix)
    size = max(4, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if count > threshold else "black", fontsize=8)
    ax.set_title("Confusion matrix")
    _save(fig, path)
