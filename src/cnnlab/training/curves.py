"""The learning curves of a run: loss and the task's headline metric per epoch.

Drawn with PIL, not matplotlib: every `cnnlab train` writes curves.png, and matplotlib's
import and first figure cost 1.5-3 s of a run's wall clock (a 1-epoch run on the digits trains
in a fraction of that), where two panels of lines, ticks and a legend take PIL milliseconds.

The other pictures have modules of their own: tasks/classify_figures.py (confusion matrix,
per-class scores, top losses, reliability), look/featuremaps.py, look/filters.py,
look/gradcam.py and look/receptive_field.py.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_write_bytes

SIZE = (1200, 480)                   # two panels, as a 10 x 4 inch figure at 120 dpi
MARGINS = (80, 44, 24, 56)           # left (tick labels), top (title), right, bottom (x label)
# Labelled for what they are: the training figure is the mean over the epoch's steps while
# the weights change, with dropout and augmentation on; validation is the epoch's final
# weights in evaluation mode. So a training loss above the validation loss is no mystery.
SPLITS = (("train", "train (mean while learning)", (31, 119, 180)),
          ("val", "validation (end of epoch, eval mode)", (255, 127, 14)))
GRID, AXES, TEXT = (225, 225, 225), (60, 60, 60), (20, 20, 20)


def plot_curves(history: list[dict], path: str | Path, metric: str = "accuracy") -> None:
    """Loss and `metric` (the task's headline: accuracy, miou ...) per epoch, training and
    validation side by side, written as a PNG."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    width = SIZE[0] // 2
    for panel, key in enumerate(("loss", metric)):
        title = "mean IoU" if key == "miou" else key.replace("_", " ").capitalize()
        lines = [(label, colour, _finite([(m["epoch"], m[f"{split}_{key}"]) for m in history]))
                 for split, label, colour in SPLITS
                 if history and all(f"{split}_{key}" in m for m in history)]  # a detector: no val_loss
        _panel(draw, (panel * width, 0, (panel + 1) * width, SIZE[1]), title, lines)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())


def _finite(line: list) -> list:
    """The points with a number to draw (an epoch whose metric is NaN or missing: a gap)."""
    return [(x, y) for x, y in line if isinstance(y, (int, float)) and math.isfinite(y)]


def _panel(draw: ImageDraw.ImageDraw, box, title: str, lines: list) -> None:
    """One chart in `box` (left, top, right, bottom): title, grid, ticks, lines, legend."""
    font, small = ImageFont.load_default(size=17), ImageFont.load_default(size=13)
    left, top = box[0] + MARGINS[0], box[1] + MARGINS[1]
    right, bottom = box[2] - MARGINS[2], box[3] - MARGINS[3]
    draw.text(((left + right) / 2, box[1] + 14), title, fill=TEXT, font=font, anchor="mt")
    points = [p for _, _, line in lines for p in line]
    xs = _ticks([x for x, _ in points] or [1], whole=True)
    ys = _ticks([y for _, y in points] or [0, 1])

    def at(x, y):
        return (left + (x - xs[0]) / (xs[-1] - xs[0]) * (right - left),
                bottom - (y - ys[0]) / (ys[-1] - ys[0]) * (bottom - top))

    decimals = max(0, -math.floor(math.log10(ys[1] - ys[0]) + 1e-9))
    for y in ys:
        draw.line([at(xs[0], y), at(xs[-1], y)], fill=GRID)
        draw.text((left - 6, at(xs[0], y)[1]), f"{y:.{decimals}f}", fill=TEXT, font=small,
                  anchor="rm")
    for x in xs:
        draw.line([at(x, ys[0]), at(x, ys[-1])], fill=GRID)
        draw.text((at(x, ys[0])[0], bottom + 6), f"{x:g}", fill=TEXT, font=small, anchor="mt")
    draw.text(((left + right) / 2, bottom + 28), "epoch", fill=TEXT, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=AXES)
    for label, colour, line in lines:
        corners = [at(x, y) for x, y in line]
        if len(corners) > 1:
            draw.line(corners, fill=colour, width=2, joint="curve")
        for cx, cy in corners:
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
    corners = [at(x, y) for _, _, line in lines for x, y in line]
    _legend(draw, (left, top, right, bottom), [(label, colour) for label, colour, _ in lines],
            corners, small)


def _legend(draw: ImageDraw.ImageDraw, chart, entries: list, points: list, font) -> None:
    """The lines' names in a framed box, in the chart's corner that hides fewest points
    (top right for falling losses, bottom right for rising accuracies)."""
    if not entries:
        return
    left, top, right, bottom = chart
    width = 54 + max(draw.textlength(label, font=font) for label, _ in entries)
    height = 12 + 20 * len(entries)
    boxes = [(x, y, x + width, y + height) for y in (top + 8, bottom - 8 - height)
             for x in (right - 10 - width, left + 10)]
    box = min(boxes, key=lambda b: sum(b[0] - 12 <= px <= b[2] + 12 and b[1] - 12 <= py <= b[3] + 12
                                       for px, py in points))
    draw.rectangle(box, fill="white", outline=GRID)
    for row, (label, colour) in enumerate(entries):
        y = box[1] + 16 + 20 * row
        draw.line([(box[0] + 8, y), (box[0] + 32, y)], fill=colour, width=2)
        draw.text((box[0] + 40, y), label, fill=TEXT, font=font, anchor="lm")


def _ticks(values: list[float], whole: bool = False, count: int = 5) -> list[float]:
    """Evenly spaced round numbers (1, 2 or 5 times a power of ten) covering `values`;
    whole numbers only for epochs. A single value gets room on both sides."""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        spread = 1.0 if whole else max(abs(low) * 0.1, 0.05)
        low, high = low - spread, high + spread
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, round(step))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [k * step for k in range(first, last + 1)]
