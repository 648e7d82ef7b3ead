"""`moving-shapes`: short clips of one shape moving up, down, left or right.

The class lives only in the motion. A shape starts anywhere (uniformly, on a torus: what
leaves one edge comes back at the other) and moves 2 or 3 pixels a frame in its clip's
direction; its size, kind (disc or square), colours and the per-frame noise are drawn
independently of the class. So every single frame of every class is the same picture
distribution: a uniformly placed shape on a noisy background. A model that looks at frames
one at a time (frame_average) cannot beat chance; one that convolves over time (c3d, r3d_18)
can read the direction off two consecutive frames.

Clips are stored frames first, uint8 N x T x C x H x W (torchvision's video layout), so each
frame is an ordinary C x H x W image to the shared preprocessing (resizing, channels,
normalisation); the video models (models/video.py) take that layout and reorder it for
their 3-D convolutions. Generated with numpy from a seed: offline and identical every time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .sources import LabelledImages

CLASSES = ["up", "down", "left", "right"]
# (dy, dx) per unit of speed, in the order of CLASSES (rows grow downwards)
DIRECTIONS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
FRAMES, SIZE = 8, 32
SPEEDS = (2, 3)          # pixels per frame
RADIUS = (3.0, 6.0)      # a disc's radius, half a square's side
NOISE = 12               # largest per-pixel deviation of the uniform noise, per frame
CLIPS = 2400             # the catalogue's set: 1,680 train, 240 val, 480 test clips


@dataclass
class MovingShapesData(LabelledImages):
    """Clips (uint8 N x T x C x H x W) and labels, plus where the shape is in every frame."""

    centres: torch.Tensor  # float32 N x T x 2: (y, x) of the shape's centre, in [0, size)


def moving_shapes(data_dir: str | None = None, download: bool = False) -> MovingShapesData:
    """The catalogue's set: 2,400 clips of 8 frames of 32x32 RGB, a quarter of each class,
    seed 0 (nothing is read or fetched; the arguments only match the other sources')."""
    return generate_moving_shapes(CLIPS, seed=0)


def generate_moving_shapes(count: int, frames: int = FRAMES, size: int = SIZE,
                           seed: int = 0) -> MovingShapesData:
    """`count` clips of `frames` frames of `size` squared RGB; the classes balanced to within
    one clip. The same arguments give identical bytes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(CLASSES))
    speed = rng.choice(SPEEDS, count)
    start = rng.uniform(0, size, (count, 2))
    steps = np.arange(frames)[None, :, None] * (DIRECTIONS[labels] * speed[:, None])[:, None, :]
    centres = (start[:, None, :] + steps) % size                     # N x T x 2
    radius = rng.uniform(*RADIUS, count)
    square = rng.random(count) < 0.5
    background = rng.uniform(0, 255, (count, 3))
    # the shape's colour: the background's opposite, jittered, so it always stands out
    colour = np.clip(255 - background + rng.uniform(-40, 40, (count, 3)), 0, 255)
    grid = np.arange(size, dtype=np.float32) + 0.5
    # torus offsets of every pixel from the centre, N x T x H (rows) and N x T x W (columns)
    half = size / 2
    dy = ((grid[None, None, :] - centres[..., :1] + half) % size - half).astype(np.float32)
    dx = ((grid[None, None, :] - centres[..., 1:] + half) % size - half).astype(np.float32)
    r = radius[:, None, None, None].astype(np.float32)
    inside = np.where(square[:, None, None, None],
                      (np.abs(dy[..., :, None]) <= r) & (np.abs(dx[..., None, :]) <= r),
                      dy[..., :, None] ** 2 + dx[..., None, :] ** 2 <= r * r)  # N x T x H x W
    clips = np.where(inside[:, :, None], colour.astype(np.int16)[:, None, :, None, None],
                     background.astype(np.int16)[:, None, :, None, None])
    clips = clips + rng.integers(-NOISE, NOISE + 1, clips.shape, dtype=np.int16)
    clips = np.clip(clips, 0, 255).astype(np.uint8)
    return MovingShapesData(torch.from_numpy(clips), torch.from_numpy(labels).long(),
                            list(CLASSES), torch.from_numpy(centres).float())
