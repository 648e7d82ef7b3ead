"""The pictures of `cnnlab explain shift|dense|border|collapse|kernel-gradient|inception`.

Each claim hands over what it computed as rows of (title, 2-D array) panels; this module is the
only one of the claims that imports matplotlib, and only when a picture is asked for (--out),
so `--json` alone never loads it.
"""
from __future__ import annotations

import numpy as np


def save_panels(rows: list[list[tuple[str, np.ndarray]]], path: str, title: str = "",
                symmetric: bool = False) -> str:
    """A grid of heat maps, one row per list; `symmetric` centres the colours on 0 (differences,
    kernels), so a zero reads as white and the sign as red or blue."""
    from matplotlib.figure import Figure

    from ..figures import checked_format, save_figure
    checked_format(path)  # a bad name fails before any drawing
    columns = max(len(row) for row in rows)
    fig = Figure(figsize=(2.3 * columns, 2.3 * len(rows) + (0.4 if title else 0)))
    axes = np.atleast_2d(fig.subplots(len(rows), columns, squeeze=False))
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(row):
                continue
            name, values = row[c]
            values = np.asarray(values, dtype=np.float64)
            top = float(np.abs(values).max(initial=0.0)) or 1.0
            shown = ax.imshow(values, cmap="RdBu_r" if symmetric else "viridis",
                              vmin=-top if symmetric else None, vmax=top if symmetric else None)
            ax.set_title(name, fontsize=8)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return str(path)


def save_bars(groups: dict[str, dict[str, float]], path: str, title: str, ylabel: str) -> str:
    """Grouped bars: one group per key of `groups`, one bar per inner key (for the tables of
    explain dense and explain inception)."""
    from matplotlib.figure import Figure

    from ..figures import checked_format, save_figure
    checked_format(path)
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.subplots()
    series = list(next(iter(groups.values())))
    width = 0.8 / len(series)
    for i, name in enumerate(series):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [groups[g][name] for g in groups], width, label=name)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], list(groups), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return str(path)
