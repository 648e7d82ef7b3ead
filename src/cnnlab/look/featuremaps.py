"""`cnnlab featuremaps`: what each convolution stage makes of one image.

Lecture 001 runs one CIFAR image through the first layer, `X = cnn.conv1(X)`, and shows the
six maps that come out: each kernel lights up where its pattern (an edge, a colour) occurs.
Here any layer can be asked for, and by default every convolution stage is shown, so the maps
can be followed from edges near the input to coarse, abstract features near the head.

The maps are taken by torchvision's feature extractor (torch.fx) where the model traces, and
by forward hooks where it does not: a forward with Python control flow on a tensor's value or
shape (efficientnet's 'same' padding) cannot be traced symbolically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.fx.proxy import TraceError
from torchvision.models.feature_extraction import create_feature_extractor

from ..errors import UserError
from .inspection import captured, conv_stages, find_layer, load_subject, read_image
from ..figures import image_to_float, mosaic, save_figure, tile_position, unit_range

COLUMNS = 8  # maps per row of a layer's grid


@dataclass
class LayerMaps:
    """One layer's grid: the channels shown (strongest first when not all fit) and the tiles."""
    name: str
    shape: list[int]       # C x H x W of the layer's output
    channels: list[int]    # channel index of each tile, in tile order
    grid: np.ndarray       # the mosaic as drawn: each map scaled to [0, 1], NaN between tiles
    columns: int

    def to_dict(self) -> dict:
        return {"layer": self.name, "shape": self.shape, "channels_shown": self.channels}


@dataclass
class FeatureMaps:
    out: Path
    image: str
    model: str
    layers: list[LayerMaps] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "image": self.image, "model": self.model,
                "layers": [layer.to_dict() for layer in self.layers]}


def traced_outputs(model, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor] | None:
    """{name: output} from torchvision's feature extractor; None where torch.fx cannot trace
    the model, or a layer is no node of the traced graph (it never runs, or runs inside a
    module fx keeps whole), and the hooks decide instead."""
    if getattr(model, "takes_targets", False):  # a detector: its training graph needs targets
        return None
    try:
        # Only eval mode is run, so a train/eval difference in the graph is no concern.
        extractor = create_feature_extractor(model, return_nodes=names, suppress_diff_warning=True)
    except TraceError:
        return None
    except ValueError:  # every name is a module (find_layer said so), but not a node
        return None
    return extractor(x)


def layer_outputs(model, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """{name: C x H x W output for the one image in x}; a layer that never runs, or gives
    no feature map (a Linear layer), is a UserError naming it."""
    for name in names:
        find_layer(model, name)  # a name the model lacks is a UserError before anything runs
    model.eval()
    with torch.no_grad():
        outputs = traced_outputs(model, x, names)
        if outputs is None:
            with captured(model, names) as outputs:
                model(x)
    for name in names:
        if name not in outputs:
            raise UserError(f"layer '{name}' does not run in the model's forward pass.")
        if outputs[name].dim() != 4:
            raise UserError(f"layer '{name}' outputs {tuple(outputs[name].shape[1:])}, not "
                            "feature maps (channels x height x width).")
    return {name: outputs[name][0].float().cpu() for name in names}


def choose_channels(maps: torch.Tensor, limit: int) -> list[int]:
    """All channels in order when they fit (as the lecture shows conv1's six); otherwise the
    `limit` with the largest mean |activation|, strongest first: those say most about the image."""
    if maps.shape[0] <= limit:
        return list(range(maps.shape[0]))
    strength = maps.abs().mean(dim=(1, 2))
    return strength.argsort(descending=True)[:limit].tolist()


def layer_grid(name: str, maps: torch.Tensor, limit: int) -> LayerMaps:
    channels = choose_channels(maps, limit)
    # Each map gets its own scale: the pattern inside a map matters, not its level.
    tiles = [unit_range(maps[c].numpy()) for c in channels]
    columns = min(COLUMNS, len(tiles))
    grid = mosaic(tiles, columns, fill=np.nan)
    return LayerMaps(name, list(maps.shape), channels, grid, columns)


def layer_grids(subject, image: torch.Tensor, layers: list[str] | None = None,
                channels: int = 16) -> tuple[np.ndarray, list[LayerMaps]]:
    """(the picture the model sees, H x W x 3 in [0, 1]; one grid per layer) for a uint8 image."""
    if channels < 1:
        raise UserError(f"--channels must be a positive whole number, not {channels}.")
    shown, x = subject.prepare(image)
    names = list(layers) if layers else conv_stages(subject.model, x)
    if not names:
        raise UserError("the model has no convolution stage to show; name one with --layer.")
    outputs = layer_outputs(subject.model, x, names)
    return image_to_float(shown.cpu()), [layer_grid(n, outputs[n], channels) for n in names]


def featuremaps(run: str | None = None, image: str | None = None, *, pretrained: str | None = None,
                sample: str | None = None, layers: list[str] | None = None, out: str | None = None,
                channels: int = 16, device: str = "auto", weights_file: str | None = None
                ) -> FeatureMaps:
    """`cnnlab featuremaps (RUN | --pretrained NAME) IMAGE [--layer NAME ...] [--out FILE]`."""
    subject = load_subject(run, pretrained, weights_file, device)
    picture, grids = layer_grids(subject, read_image(image, sample), layers, channels)
    label = image if image is not None else sample
    out = Path(out or f"featuremaps-{Path(label).stem}.png")
    save_figure(draw(picture, grids, f"{subject.name}: {Path(label).name}"), out)
    return FeatureMaps(out, str(label), subject.name, grids)


def draw(picture: np.ndarray, grids: list[LayerMaps], title: str) -> Figure:
    """The input on top, then one row per layer, each tile labelled with its channel."""
    heights = [1.6] + [max(0.8, 10 * g.grid.shape[0] / g.grid.shape[1]) for g in grids]
    fig = Figure(figsize=(10, sum(heights) + 0.4 * len(heights)))
    axes = fig.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes[0, 0].imshow(picture, interpolation="nearest")
    axes[0, 0].set_title(f"{title} (input as the model sees it)", fontsize=10)
    for ax, grid in zip(axes[1:, 0], grids):
        ax.imshow(np.ma.masked_invalid(grid.grid), cmap="viridis", interpolation="nearest")
        c, h, w = grid.shape
        ax.set_title(f"{grid.name}: {c} maps of {h}x{w}"
                     + (f", the {len(grid.channels)} strongest" if len(grid.channels) < c else ""),
                     fontsize=9)
        for i, channel in enumerate(grid.channels):
            top, left = tile_position(i, grid.columns, (h, w))
            ax.text(left, top, str(channel), color="white", fontsize=6, va="top", ha="left")
    for ax in axes[:, 0]:
        ax.axis("off")
    return fig


def format_featuremaps(result: dict) -> str:
    lines = [f"{result['model']} on {result['image']}:"]
    lines += [f"  {layer['layer']}: {'x'.join(map(str, layer['shape']))}, showing "
              f"{len(layer['channels_shown'])} map(s)" for layer in result["layers"]]
    return "\n".join(lines + [f"picture: {result['out']}"])
