"""The frame sheet: frames side by side, each track's box (and mask) drawn in its own colour
with its id, so an identity can be followed by eye and a switch is a change of colour.

Small frames are enlarged with nearest-neighbour pixels before drawing (a 64 x 64 frame
leaves no room for a readable label); the drawing is torchvision's draw_bounding_boxes and
draw_segmentation_masks, as `cnnlab predict` draws detections.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..atomic import atomic_write_bytes
from ..figures import figure_bytes
from ..tasks.segment_report import colour
from .linking import Track

MARK = "cnnlab track"   # PNG 'Software': a file we may replace
PANELS = 24             # frames shown at most, evenly spread over a longer video
COLUMNS = 5
DRAWN_SIDE = 192        # small frames are enlarged to about this many pixels


def frame_tracks(tracks: list[Track], frames: int) -> list[list[tuple]]:
    """Per frame, (id, label, box, mask or None) of every track seen in it."""
    shown = [[] for _ in range(frames)]
    for track in tracks:
        for i, frame in enumerate(track.frames):
            mask = None if track.masks is None else track.masks[i]
            shown[frame].append((track.id, track.label, track.boxes[i], mask))
    return shown


def drawn_frame(frame: torch.Tensor, objects: list[tuple]) -> torch.Tensor:
    """uint8 3 x H' x W': the frame, enlarged, with each object's mask and box in the
    colour of its id."""
    scale = max(1, DRAWN_SIDE // max(frame.shape[-2:]))
    picture = frame.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    if not objects:
        return picture
    colours = [colour(identity) for identity, *_ in objects]
    masks = [m for *_, m in objects]
    if all(m is not None for m in masks):
        big = torch.from_numpy(np.stack(masks)).repeat_interleave(scale, 1)
        picture = draw_segmentation_masks(picture, big.repeat_interleave(scale, 2), alpha=0.4,
                                          colors=colours)
    boxes = torch.tensor(np.stack([b for _, _, b, _ in objects]) * scale, dtype=torch.float)
    return draw_bounding_boxes(picture, boxes, colors=colours, width=2)


def _label(ax, objects: list[tuple], scale: int, classes: list[str]) -> None:
    """Each object's id and class above its box's corner, in matplotlib's text: readable at
    any size, where the bitmap font of draw_bounding_boxes is a few pixels high."""
    for identity, label, box, _ in objects:
        name = classes[label] if 0 <= label < len(classes) else str(label)
        ax.text(box[0] * scale, box[1] * scale - 2, f"{identity} {name}", fontsize=6.5,
                color="black", va="bottom", ha="left",
                bbox={"facecolor": np.array(colour(identity)) / 255, "edgecolor": "none",
                      "pad": 0.8, "alpha": 0.85})


def sheet_figure(frames: torch.Tensor, tracks: list[Track], classes: list[str],
                 title: str) -> Figure:
    picks = np.unique(np.linspace(0, len(frames) - 1, min(PANELS, len(frames))).round()
                      ).astype(int)
    per_frame = frame_tracks(tracks, len(frames))
    columns = min(COLUMNS, len(picks))
    rows = math.ceil(len(picks) / columns)
    fig = Figure(figsize=(2.4 * columns, 2.5 * rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, picks):
        picture = drawn_frame(frames[index], per_frame[index])
        ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
        _label(ax, per_frame[index], picture.shape[-1] // frames.shape[-1], classes)
        ax.set_title(f"frame {index}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def save_sheet(fig: Figure, path: Path) -> None:
    """As PNG, marked as cnnlab track's, written whole or not at all."""
    atomic_write_bytes(path, figure_bytes(fig, metadata={"Software": MARK}))
