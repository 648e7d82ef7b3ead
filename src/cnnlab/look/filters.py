"""`cnnlab filters`: the learned kernels of a convolution, drawn as small images.

A convolution's weight has shape out_channels x in_channels x kh x kw (004: 'one kernel per
pair of input and output channel'). The first layer sees the RGB image itself, so each of its
output kernels is a tiny colour picture of the pattern it responds to: the oriented edges and
colour blobs of AlexNet's and ZFNet's first layers (003). Deeper kernels act on feature maps,
not colours, and are drawn in grey, one per (output, input) channel pair.

Zero weight is mid-grey in every tile: lighter means a positive weight, darker a negative one,
each kernel scaled by its own largest |weight| so faint kernels still show their pattern.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..errors import UserError
from .inspection import find_layer, load_subject
from ..figures import mosaic, save_figure, symmetric_range

COLUMNS = 8
MAX_KERNELS = 64      # colour tiles, or rows of grey ones
MAX_INPUTS = 16       # grey tiles per row (input channels)
MAX_ROWS = 16         # rows of (output, input) pairs: the picture stays readable
LAYOUTS = {"colour": "one RGB kernel per output channel",
           "pairs": "rows: output channels, columns: input channels",
           "single": "one kernel per output channel"}


@dataclass
class Filters:
    out: Path | None
    model: str
    layer: str
    weight_shape: list[int]
    colour: bool
    rows: int             # kernels (output channels) shown
    columns: int          # tiles per row of the grid
    layout: str           # what a tile is: LAYOUTS' keys
    grid: np.ndarray      # H x W (grey) or H x W x 3 (colour), in [0, 1], NaN/white between tiles

    def to_dict(self) -> dict:
        return {"out": str(self.out), "model": self.model, "layer": self.layer,
                "weight_shape": self.weight_shape, "colour": self.colour,
                "kernels_shown": self.rows}


def first_convolution(model: nn.Module) -> str:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise UserError("the model has no Conv2d layer, so it has no kernels to show.")


def conv_weight(model: nn.Module, name: str) -> torch.Tensor:
    module = find_layer(model, name)
    weight = getattr(module, "weight", None)
    if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) or weight is None:
        raise UserError(f"layer '{name}' is a {type(module).__name__}, not a convolution; "
                        "filters are the kernels of a Conv2d layer.")
    return weight.detach().float().cpu()


def colour_grid(weight: torch.Tensor) -> tuple[np.ndarray, int, int, str]:
    """One RGB tile per output kernel: channel i of the kernel drives colour i of the tile."""
    kernels = weight[:MAX_KERNELS].numpy()
    tiles = [np.moveaxis(symmetric_range(k), 0, -1) for k in kernels]
    columns = min(COLUMNS, len(tiles))
    return mosaic(tiles, columns, fill=1.0), len(tiles), columns, "colour"


def grey_grid(weight: torch.Tensor) -> tuple[np.ndarray, int, int, str]:
    """Row r holds output kernel r's slices for each input channel (one tile per pair); a
    depthwise or single-input kernel has one slice, so those are laid out COLUMNS a row."""
    kernels = weight[:MAX_KERNELS, :MAX_INPUTS].numpy()
    if kernels.shape[1] == 1:
        tiles, columns, layout = [symmetric_range(k[0]) for k in kernels], COLUMNS, "single"
    else:
        kernels = kernels[:MAX_ROWS]
        tiles = [symmetric_range(k[i]) for k in kernels for i in range(kernels.shape[1])]
        columns, layout = kernels.shape[1], "pairs"
    columns = min(columns, len(tiles))
    return mosaic(tiles, columns, fill=np.nan), len(kernels), columns, layout


def kernel_grid(model: nn.Module, name: str | None = None, model_name: str = "") -> Filters:
    """The kernels of convolution `name` (default: the first) laid out as a grid."""
    first = first_convolution(model)
    name = name or first
    weight = conv_weight(model, name)
    if isinstance(find_layer(model, name), nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)  # stored in x out: show one kernel per output channel
    colour = name == first and weight.shape[1] == 3
    grid, rows, columns, layout = colour_grid(weight) if colour else grey_grid(weight)
    return Filters(None, model_name, name, list(weight.shape), colour, rows, columns, layout, grid)


def filters(run: str | None = None, *, pretrained: str | None = None, layer: str | None = None,
            out: str | None = None, device: str = "auto",
            weights_file: str | None = None) -> Filters:
    """`cnnlab filters (RUN | --pretrained NAME) [--layer NAME] [--out FILE]`."""
    subject = load_subject(run, pretrained, weights_file, device)
    result = kernel_grid(subject.model, layer, subject.name)
    result.out = save_figure(draw(result), out or f"filters-{result.layer.replace('.', '_')}.png")
    return result


def draw(result: Filters) -> Figure:
    height, width = result.grid.shape[:2]
    fig = Figure(figsize=(8, max(1.5, 8 * height / width)))
    ax = fig.subplots()
    shown = result.grid if result.colour else np.ma.masked_invalid(result.grid)
    ax.imshow(shown, cmap=None if result.colour else "gray", vmin=0, vmax=1,
              interpolation="nearest")
    o, i, kh, kw = result.weight_shape
    notes = [LAYOUTS[result.layout]]
    if result.rows < o:
        notes.append(f"first {result.rows} of {o}")
    if result.layout == "pairs" and i > MAX_INPUTS:
        notes.append(f"first {MAX_INPUTS} inputs")
    ax.set_title(f"{result.model}: {result.layer}, {o}x{i}x{kh}x{kw} weights "
                 f"({'; '.join(notes)})", fontsize=9)
    ax.axis("off")
    return fig


def format_filters(result: dict) -> str:
    shape = "x".join(map(str, result["weight_shape"]))
    return (f"{result['model']}: {result['layer']} has {shape} weights; drew "
            f"{result['kernels_shown']} kernel(s){' in colour' if result['colour'] else ''}\n"
            f"picture: {result['out']}")
