"""`crossing-shapes`: short clips of two or three shapes whose straight paths cross mid-clip,
with every object's identity, box and visible mask in every frame: ground truth for tracking.

The objects are drawn exactly as in `shapes-objects` (scenes.py, with shapes.py's rasteriser,
textured backgrounds and contrasting colours), so a detector trained by the default
`cnnlab train --task detect` or `--task instance` recipe sees the objects it learned; only
their motion is new. Each object keeps its class, size and colour for the whole clip and
glides in a straight line at constant speed; all the paths of a clip pass near one meeting
point at about the middle frame, so the objects overlap there. That is where a tracker is
tested: a linker that only looks at the latest boxes may swap two identities when they part.

Later objects are drawn over earlier ones. The ground truth is what a camera shows: an
object's mask is its *visible* pixels, its box their extent, and an object with less than
VISIBLE of its pixels showing is absent from that frame (no detector can be blamed for
missing it; a tracker must carry its identity across the gap). Generated with numpy from a
seed: offline and identical every time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from .shapes import CLASSES, backgrounds, contrasting_colours, rasterise, tight_boxes

FRAMES, SIZE = 20, 64    # 64 x 64: the size of shapes-objects' scenes, which the detectors know
OBJECTS = (2, 3)         # objects per clip, uniform
EXTENT = (0.2, 0.35)     # a shape's side as a fraction of the frame, within shapes-objects' range
SPEED = (1.5, 2.5)       # pixels per frame (slower when the path would leave the frame)
MEETING_SPREAD = 0.15    # each path's offset from the meeting point, as a fraction of the frame
VISIBLE = 0.5            # least fraction of an object's pixels showing for it to count as present
OBJECT_CONTRAST = 100    # least RGB distance between two objects' colours, so an overlap reads
COLOUR_TRIES = 8


@dataclass
class CrossingClips:
    """Clips (uint8 N x T x 3 x H x W) and, per clip and frame, the objects present:
    {"ids": int64 K (1.. within a clip), "labels": int64 K (1 circle, 2 square, 3 triangle,
    as shapes-objects numbers them), "boxes": float32 K x 4 (x1, y1, x2, y2 on pixel edges),
    "masks": uint8 K x H x W (the visible pixels)}."""

    clips: torch.Tensor
    truth: list[list[dict]]
    classes: list[str]


def generate_crossing_clips(count: int = 1, frames: int = FRAMES, size: int = SIZE,
                            seed: int = 0) -> CrossingClips:
    """`count` clips of `frames` frames of `size` squared RGB. The same arguments give
    identical bytes; clip i of a set is not the clip of seed + i (one generator serves all)."""
    if count < 1:
        raise UserError(f"the number of clips must be 1 or more, not {count}.")
    if frames < 2:
        raise UserError(f"a clip to track needs at least 2 frames, not {frames}.")
    if size < 32:
        raise UserError(f"crossing clips need frames at least 32 pixels wide, not {size}.")
    rng = np.random.default_rng(seed)
    clips, truth = zip(*(_clip(rng, frames, size) for _ in range(count)))
    return CrossingClips(torch.from_numpy(np.stack(clips)), list(truth), list(CLASSES))


def _clip(rng, frames: int, size: int):
    """One clip (uint8 T x 3 x H x W) and its per-frame ground truth."""
    count = int(rng.integers(OBJECTS[0], OBJECTS[1] + 1))
    classes = rng.integers(0, len(CLASSES), count)
    sprites = [_sprite(rng, label, size) for label in classes]
    # directions 180/count degrees apart (give or take 20), so the paths really cross
    angles = rng.uniform(0, 2 * np.pi) + np.arange(count) * np.pi / count
    angles += rng.uniform(-0.35, 0.35, count)
    corners = np.stack([_path(rng, a, len(s), frames, size)
                        for a, s in zip(angles, sprites)])               # K x T x 2 (y, x)
    background = backgrounds(rng, 1, size)[0]
    full = np.zeros((count, frames, size, size), dtype=bool)
    for k, sprite in enumerate(sprites):
        side = len(sprite)
        for t, (y, x) in enumerate(corners[k]):
            full[k, t, y:y + side, x:x + side] = sprite
    colours = _colours(rng, background, full)
    clip = np.repeat(background[None], frames, axis=0)
    for k in range(count):  # in order: a later object passes in front of an earlier one
        clip = np.where(full[k][:, None], colours[k][None, :, None, None], clip)
    hidden = np.cumsum(full[::-1], axis=0)[::-1] > 0      # covered by object k or a later one
    visible = full.copy()
    visible[:-1] &= ~hidden[1:]
    return clip, [_frame_truth(full[:, t], visible[:, t], classes) for t in range(frames)]


def _sprite(rng, label: int, size: int) -> np.ndarray:
    """One shape filling its own square canvas, drawn by shapes.py's rasteriser (an extent
    of (1, 1) puts it in the whole canvas)."""
    side = int(round(rng.uniform(*EXTENT) * size))
    return rasterise(rng, np.array([label]), side, (1.0, 1.0))[0]


def _path(rng, angle: float, side: int, frames: int, size: int) -> np.ndarray:
    """Integer top-left corners (y, x) for every frame: a straight line along `angle` (either
    way) through a point near the frame's centre, reached near the middle frame."""
    direction = np.array([np.sin(angle), np.cos(angle)]) * rng.choice([-1, 1])
    room = size - side
    meeting = room / 2 + rng.uniform(-MEETING_SPREAD, MEETING_SPREAD, 2) * size
    middle = (frames - 1) / 2 + rng.uniform(-1, 1)
    # the fastest speed that keeps the whole shape inside the frame at both ends of the clip
    reach = max(middle, frames - 1 - middle)
    limits = [min(meeting[a], room - meeting[a]) / (abs(direction[a]) * reach + 1e-9)
              for a in range(2)]
    speed = min(rng.uniform(*SPEED), *limits)
    times = np.arange(frames)[:, None] - middle
    corners = np.rint(meeting + times * direction * speed)
    return np.clip(corners, 0, room).astype(int)


def _colours(rng, background: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Per object a colour that stands out from the background along its whole path (as
    shapes.py chooses one for a still shape's box) and from the other objects' colours."""
    chosen = []
    for masks in full:
        box = tight_boxes(masks.any(axis=0)[None])                       # the path's extent
        tries = contrasting_colours(rng, np.repeat(background[None], COLOUR_TRIES, axis=0),
                                    np.repeat(box, COLOUR_TRIES, axis=0)).astype(float)
        apart = np.array([min((np.linalg.norm(c - o) for o in chosen), default=np.inf)
                          for c in tries])
        good = np.flatnonzero(apart >= OBJECT_CONTRAST)
        chosen.append(tries[good[0] if len(good) else apart.argmax()])
    return np.array(chosen, dtype=np.uint8)


def _frame_truth(full: np.ndarray, visible: np.ndarray, classes: np.ndarray) -> dict:
    shown = visible.sum(axis=(1, 2)) >= VISIBLE * full.sum(axis=(1, 2))
    keep = np.flatnonzero(shown)
    return {"ids": torch.from_numpy(keep + 1).long(),
            "labels": torch.from_numpy(classes[keep] + 1).long(),
            "boxes": torch.from_numpy(tight_boxes(visible[keep])).float(),
            "masks": torch.from_numpy(visible[keep].astype(np.uint8))}
