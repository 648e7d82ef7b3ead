"""The pictures of `explain depth`, `explain batchnorm` and `explain transfer-depth`.

The only module of these claims that imports matplotlib, and only when --out asks for a
picture; what a picture shows is computed by the claim and handed over as numbers.
"""
from __future__ import annotations

import numpy as np

TINY = 1e-12  # a gradient of exactly 0 drawn at the bottom of the log scale, not as -inf


def check_name(path) -> None:
    """A picture name that cannot be saved fails before the experiment runs, not after."""
    if path is not None:
        from ..figures import checked_format
        checked_format(path)


def _figure(path: str, size: tuple[float, float], columns: int):
    from matplotlib.figure import Figure

    from ..figures import checked_format
    checked_format(path)  # a bad name fails before any drawing
    fig = Figure(figsize=size)
    return fig, fig.subplots(1, columns, squeeze=False)[0]


def _save(fig, path: str, title: str) -> str:
    from ..figures import save_figure
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return str(path)


def save_gradient_norms(runs: list[dict], path: str, title: str) -> str:
    """A heat map per network (layers down, steps across, log10 of the gradient norm, one
    colour scale for both) and the median over the steps per layer as lines."""
    fig, axes = _figure(path, (13, 4.2), len(runs) + 1)
    logs = [np.log10(np.maximum(np.asarray(r["gradient_norms"], dtype=np.float64).T, TINY))
            for r in runs]
    finite = np.concatenate([v[np.isfinite(v)] for v in logs]) if logs else np.zeros(1)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for ax, run, values in zip(axes, runs, logs):
        layers, steps = values.shape  # numbered from 1 on both axes, as the line plot is
        shown = ax.imshow(values, aspect="auto", cmap="magma", vmin=low, vmax=high,
                          interpolation="nearest", extent=(0.5, steps + 0.5, layers + 0.5, 0.5))
        ax.set_title(f"{run['model']}: log10 gradient norm", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("convolution (input at the top)")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    lines = axes[-1]
    for run in runs:
        median = np.median(np.asarray(run["gradient_norms"], dtype=np.float64), axis=0)
        lines.plot(np.arange(1, len(median) + 1), np.maximum(median, TINY), label=run["model"])
    lines.set_yscale("log")
    lines.set_xlabel("convolution (1: nearest the input)")
    lines.set_ylabel("gradient norm, median over steps")
    lines.legend(fontsize=8)
    return _save(fig, path, title)


def save_activation_spread(networks: list[dict], path: str, title: str) -> str:
    """Per layer, the mean and the band mean +- std of its outputs, at initialisation and
    after the steps, for the network with batch norm and the one without; 004's [-2, 2]
    drawn as a grey band."""
    fig, axes = _figure(path, (6 * len(networks), 4), len(networks))
    for ax, net in zip(axes, networks):
        for moment, style in (("at_init", "--"), ("trained", "-")):
            layers = net[moment]
            x = np.arange(1, len(layers) + 1)
            mean = np.array([layer["mean"] for layer in layers])
            std = np.array([layer["std"] for layer in layers])
            line, = ax.plot(x, mean, style, label=f"mean, {moment.replace('_', ' ')}")
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color(),
                            label=f"mean +- std, {moment.replace('_', ' ')}")
        ax.axhspan(-2, 2, color="grey", alpha=0.12, label="004's [-2, 2]")
        ax.set_title(net["name"], fontsize=9)
        ax.set_xlabel("layer (1: nearest the input)")
        ax.set_ylabel("activation")
        ax.legend(fontsize=7)
    return _save(fig, path, title)


def save_transfer_depth(table: dict, path: str, title: str) -> str:
    """Test accuracy of a classifier on each cut point's features, one line per data set."""
    fig, axes = _figure(path, (7.5, 4.2), 1)
    ax = axes[0]
    for dataset in table["datasets"]:
        rows = dataset["rows"]
        ax.plot(range(len(rows)), [r["test_accuracy"] for r in rows], "o-",
                label=dataset["dataset"])
    cuts = table["datasets"][0]["rows"] if table["datasets"] else []
    ax.set_xticks(range(len(cuts)), [r["cut"] for r in cuts], rotation=30, fontsize=8)
    ax.set_xlabel("features taken after (deeper to the right)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _save(fig, path, title)
