"""`cnnlab receptive-field MODEL --layer NAME`: the part of the input one unit of a layer sees,
drawn on the image, worked out twice.

CS428 lecture 4 (002) and 004 compute receptive fields by arithmetic: each layer widens the
window by (k-1) x jump, and the jump grows with every stride (course/receptive.py;
course/summary.py traces them through a real forward pass). Here that window is placed for one unit, (row, col) of the
layer's output: its centre is start + index x jump, its width rf. Then the same question is
asked of autograd: the input pixels whose gradient of that unit's value is non-zero are
exactly the pixels it depends on. The arithmetic is an upper bound (a ReLU that is off or a
max pool that picks another pixel hides some of them), so the footprint is the union over a
few random inputs, and the two are compared by their bounding boxes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from ..data.transforms import Preprocess
from ..errors import UserError
from .inspection import find_layer, first_tensor, read_image
from ..figures import image_to_float, save_figure
from ..course.receptive import Geometry

TRIES = 4  # random inputs whose footprints are united: enough to light every pixel seen


class _Reached(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not needed."""


@dataclass
class ReceptiveField:
    out: Path | None
    model: str
    layer: str
    input_shape: list[int]            # C x H x W
    map_size: list[int]               # H x W of the layer's output
    unit: tuple[int, int]             # (row, col) in that map
    geometry: Geometry                # rf, jump, start from the arithmetic
    window: tuple[int, int, int, int]       # top, left, bottom, right (inclusive), may overhang
    footprint: np.ndarray             # H x W bool: pixels with a non-zero gradient
    picture: np.ndarray               # H x W x 3 as drawn (footprint tinted)

    @property
    def window_inside(self) -> tuple[int, int, int, int]:
        """The window clipped to the image: zero padding beyond the border holds nothing."""
        top, left, bottom, right = self.window
        height, width = self.input_shape[1:]
        return max(top, 0), max(left, 0), min(bottom, height - 1), min(right, width - 1)

    @property
    def footprint_box(self) -> tuple[int, int, int, int] | None:
        rows, cols = np.nonzero(self.footprint)
        if rows.size == 0:
            return None
        return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())

    @property
    def agrees(self) -> bool:
        return self.footprint_box == self.window_inside

    def to_dict(self) -> dict:
        return {"out": str(self.out), "model": self.model, "layer": self.layer,
                "input": self.input_shape, "map_size": self.map_size, "unit": list(self.unit),
                **self.geometry.to_json(), "window": list(self.window),
                "window_inside_image": list(self.window_inside),
                "gradient_footprint": list(self.footprint_box or []), "agrees": self.agrees}


def layer_geometry(model: nn.Module, input_shape, layer: str) -> tuple[Geometry, list[int]]:
    """The arithmetic's (rf, jump, start) of `layer`'s output, from summary's traced pass."""
    from ..course.receptive import UNKNOWN
    from ..course.summary import trace_model
    caught = {}

    def hook(_module, _args, output):
        caught.setdefault("out", first_tensor(output))

    handle = find_layer(model, layer).register_forward_hook(hook)
    try:
        trace = trace_model(model, tuple(input_shape))
    finally:
        handle.remove()
    tensor = caught.get("out")
    if tensor is None or tensor.dim() != 4:
        raise UserError(f"layer '{layer}' gives no feature map, so its units have no receptive "
                        "field in the image.")
    geometry = trace.geometry.get(tensor)
    if geometry is None or geometry == UNKNOWN:
        raise UserError(f"the receptive field of '{layer}' is unknown: it follows an operation "
                        "cnnlab has no formula for.")
    return geometry, list(tensor.shape[-2:])


def unit_window(geometry: Geometry, unit) -> tuple[int, int, int, int]:
    """Input pixels (inclusive) covered by unit (row, col): centre start + index x jump."""
    bounds = []
    for axis in (0, 1):
        centre = geometry.start[axis] + unit[axis] * geometry.jump[axis]
        half = (geometry.rf[axis] - 1) / Fraction(2)
        bounds.append((math.ceil(centre - half), math.floor(centre + half)))
    (top, bottom), (left, right) = bounds
    return top, left, bottom, right


def gradient_footprint(model: nn.Module, inputs: torch.Tensor, layer: str, unit) -> np.ndarray:
    """Pixels of any of `inputs` (N x C x H x W) on which the unit's value depends: a non-zero
    gradient of the sum over channels at (row, col) of the layer's output."""
    caught = {}

    def hook(_module, _args, output):
        caught["out"] = first_tensor(output)
        raise _Reached

    x = inputs.detach().clone().requires_grad_(True)
    handle = find_layer(model, layer).register_forward_hook(hook)
    try:
        with torch.enable_grad():
            model.eval()(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    caught["out"][:, :, unit[0], unit[1]].sum().backward()
    return (x.grad.abs().sum(dim=(0, 1)) > 0).cpu().numpy()


def parse_unit(text, map_size) -> tuple[int, int]:
    """'ROW,COL' of a unit in the layer's output; none: the centre unit."""
    if text is None:
        return map_size[0] // 2, map_size[1] // 2
    try:
        row, col = (int(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        raise UserError(f"--unit must be ROW,COL (two whole numbers), not '{text}'.") from None
    if not (0 <= row < map_size[0] and 0 <= col < map_size[1]):
        raise UserError(f"--unit {row},{col} is outside the layer's {map_size[0]}x{map_size[1]} "
                        "output.")
    return row, col


def load_model_input(model: str, input: str | None):
    """(module, name, Preprocess for an image, C x H x W): a run folder, a registered model or
    module:attribute (as `cnnlab summary` takes them)."""
    if (Path(model) / "config.json").is_file():
        from ..runs.folder import load_run
        run = load_run(model, "cpu")
        preprocess = run.spec.preprocess
        return run.model, Path(model).name, preprocess, (preprocess.channels, *preprocess.size)
    from ..course.summary import load_model, parse_input
    channels = parse_input(input, (1, 1, 1))[0] if input and input.count("x") == 2 else None
    module, default = load_model(model, channels)
    shape = parse_input(input, default)
    half = (0.5,) * shape[0]  # any image is shown as it is; the values only feed the gradient
    return module.eval(), model, Preprocess(shape[0], tuple(shape[1:]), half, half), tuple(shape)


def receptive_field(model: str, layer: str, *, image: str | None = None, sample: str | None = None,
                    input: str | None = None, unit: str | None = None, out: str | None = None,
                    seed: int = 0) -> ReceptiveField:
    """`cnnlab receptive-field MODEL --layer NAME [--image IMAGE] [--unit R,C] [--out FILE]`."""
    module, name, preprocess, shape = load_model_input(model, input)
    geometry, map_size = layer_geometry(module, shape, layer)
    where = parse_unit(unit, map_size)
    like = next(module.parameters(), torch.zeros(()))
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(TRIES, *shape, generator=generator).to(like.dtype)
    base = np.full((*shape[1:], 3), 0.85)  # plain light grey when no image is given
    if image is not None or sample is not None:
        shown = preprocess.fit_size(read_image(image, sample))
        inputs = torch.cat([preprocess.normalise(shown)[None].to(like.dtype), inputs])
        base = image_to_float(shown)
    footprint = gradient_footprint(module, inputs, layer, where)
    tint = np.array([1.0, 0.55, 0.0])  # orange: the pixels autograd says the unit depends on
    picture = np.where(footprint[..., None], 0.45 * base + 0.55 * tint, base)
    result = ReceptiveField(None, name, layer, list(shape), map_size, where, geometry,
                            unit_window(geometry, where), footprint, picture)
    result.out = save_figure(draw(result), out or f"receptive-field-{layer.replace('.', '_')}.png")
    return result


def draw(result: ReceptiveField) -> Figure:
    """The footprint tinted on the image, the arithmetic's window as a red frame; the axes
    reach into the zero padding where the window hangs over the border."""
    top, left, bottom, right = result.window
    height, width = result.input_shape[1:]
    fig = Figure(figsize=(6, 6.4))
    ax = fig.subplots()
    ax.imshow(result.picture, interpolation="nearest")
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                           fill=False, edgecolor="red", linewidth=2))
    ax.set_xlim(min(-0.5, left - 1), max(width - 0.5, right + 1))
    ax.set_ylim(max(height - 0.5, bottom + 1), min(-0.5, top - 1))
    rf = "x".join(f"{float(v):g}" for v in result.geometry.rf)
    verdict = "agree" if result.agrees else "differ (see the text output)"
    ax.set_title(f"{result.model}: {result.layer} unit {result.unit}, receptive field {rf}\n"
                 f"red: arithmetic window; orange: non-zero gradient; they {verdict}", fontsize=9)
    return fig


def format_receptive_field(result: dict) -> str:
    top, left, bottom, right = result["window"]
    box = result["gradient_footprint"]
    shape = "x".join(map(str, result["input"]))
    lines = [f"{result['model']} on {shape}: layer {result['layer']} "
             f"({result['map_size'][0]}x{result['map_size'][1]}), unit {tuple(result['unit'])}",
             f"arithmetic: receptive field {result['rf']}, jump {result['jump']}, start "
             f"{result['start']} -> rows {top}..{bottom}, columns {left}..{right}"]
    inside = result["window_inside_image"]
    if inside != result["window"]:
        lines.append(f"inside the image (the rest is padding): rows {inside[0]}..{inside[2]}, "
                     f"columns {inside[1]}..{inside[3]}")
    lines.append(f"gradient footprint: rows {box[0]}..{box[2]}, columns {box[1]}..{box[3]}"
                 if box else "gradient footprint: empty (the unit depends on no input pixel)")
    lines.append("they agree" if result["agrees"] else
                 "they differ: some pixels of the window never reach this unit here (a ReLU "
                 "that is off, or a max pool that picked another pixel)")
    lines.append(f"picture: {result['out']}")
    return "\n".join(lines)
