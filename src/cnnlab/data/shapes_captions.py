"""`shapes-captions`: scenes of two shapes with sentences that say what and where they are,
"a red circle above a blue square": the offline captioning set (--task caption).

Every scene holds two shapes (circle, square or triangle, drawn by shapes.py's rasteriser on
its textured backgrounds), one above the other or side by side, in one of six named colours.
The sentences name each shape by its colour and kind and say where it is from the other, in
each order and with or without "is", so every image has four references:

    a red circle above a blue square          a blue square below a red circle
    a red circle is above a blue square       a blue square is below a red circle
    (side by side: "to the left of", "to the right of")

The layout leaves no doubt about the relation: each shape lies in its own half of the image,
and the shapes are large enough (55-90% of the half) that the distance between their centres
along the relation's axis always exceeds the distance across it. Colours are named, so each
is one of a fixed palette (jittered a little), chosen among those far enough from the
background under the shape (shapes.SHAPE_CONTRAST); the two shapes never share both colour and
kind, so the sentence always tells them apart. Generated with numpy from a seed: identical
bytes every time, nothing downloaded.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .caption_files import CaptionedImages
from .shapes import CLASSES, SHAPE_CONTRAST, backgrounds, rasterise

SIZE = 48         # pixels a side; each shape lives in a half: 24 pixels
SCENES = 3000     # the catalogue's set: 2,100 train, 300 validation, 600 test scenes
EXTENT = (0.55, 0.9)  # a shape's extent as a fraction of its half (13 to 21 pixels)
JITTER = 20       # largest change of a colour channel from the palette's value
PALETTE = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 70, 230),
           "yellow": (240, 220, 30), "white": (245, 245, 245), "black": (15, 15, 15)}
COLOURS, RGB = list(PALETTE), np.array(list(PALETTE.values()), dtype=np.float32)
# The relation of the first-named shape to the other, and its converse (label 0 and 1).
RELATIONS = {"above": "below", "to the left of": "to the right of"}
LAYOUTS = ["one above the other", "side by side"]


def shapes_captions(data_dir: str | None = None, download: bool = False) -> CaptionedImages:
    """The catalogue's set: 3,000 scenes of 48 x 48, seed 0 (the arguments only match the
    other sources'; nothing is read or fetched)."""
    return generate_captioned_scenes(SCENES, seed=0)


def generate_captioned_scenes(count: int, size: int = SIZE, seed: int = 0) -> CaptionedImages:
    """`count` RGB scenes of `size` squared with four reference sentences each; labels are
    the layout (0: one above the other, 1: side by side), for a stratified split."""
    if count < 0:
        raise UserError(f"the number of scenes must be 0 or more, not {count}.")
    if size < 16:
        raise UserError(f"captioned scenes must be at least 16 pixels wide, not {size}.")
    rng = np.random.default_rng(seed)
    layout = rng.integers(0, 2, count)
    kinds = rng.integers(0, len(CLASSES), (count, 2))
    masks = _place(rng, layout, kinds, size)                      # count x 2 x H x W
    images = backgrounds(rng, count, size)
    colours = _colours(rng, images, masks, kinds)                 # count x 2 indices
    paint = np.clip(RGB[colours] + rng.uniform(-JITTER, JITTER, (count, 2, 3)), 0, 255)
    for shape in range(2):
        images = np.where(masks[:, shape, None], paint[:, shape, :, None, None].astype(np.uint8),
                          images)
    targets = [{"captions": sentences(layout[i], kinds[i], colours[i])} for i in range(count)]
    return CaptionedImages(torch.from_numpy(images), torch.from_numpy(layout).long(),
                           list(LAYOUTS), targets)


def sentences(layout: int, kinds, colours) -> list[str]:
    """The four references of one scene: shape 0 is the upper (or left) one."""
    first, second = (f"a {COLOURS[colours[i]]} {CLASSES[kinds[i]]}" for i in range(2))
    relation = list(RELATIONS)[layout]
    converse = RELATIONS[relation]
    return [f"{first} {relation} {second}", f"{second} {converse} {first}",
            f"{first} is {relation} {second}", f"{second} is {converse} {first}"]


def _place(rng, layout, kinds, size):
    """bool masks: each shape rasterised in a half-sized square, pasted into its half (the
    upper or left one for shape 0), both at the same offset across the relation's axis."""
    half = size // 2
    masks = np.zeros((len(layout), 2, size, size), dtype=bool)
    across = rng.integers(0, size - half + 1, len(layout))
    for shape in range(2):
        drawn = rasterise(rng, kinds[:, shape], half, EXTENT)
        for i in range(len(layout)):
            along, other = shape * half, across[i]
            row, column = (along, other) if layout[i] == 0 else (other, along)
            masks[i, shape, row:row + half, column:column + half] = drawn[i]
    return masks


def _colours(rng, images, masks, kinds):
    """Palette indices, count x 2: a random colour far enough from the background under the
    shape (the farthest if none is), the second never the first's when the kinds match."""
    weights = masks.astype(np.float32)
    local = np.einsum("nchw,nshw->nsc", images.astype(np.float32), weights)
    local /= weights.sum(axis=(2, 3))[..., None]                       # count x 2 x 3
    distance = np.linalg.norm(local[:, :, None] - RGB[None, None], axis=3)  # count x 2 x P
    chosen = np.zeros((len(images), 2), dtype=np.int64)
    for shape in range(2):
        allowed = distance[:, shape] >= SHAPE_CONTRAST
        if shape == 1:  # same kind: another colour, or the sentence could not tell them apart
            same = kinds[:, 1] == kinds[:, 0]
            allowed[same, chosen[same, 0]] = False
        score = np.where(allowed, rng.random(allowed.shape), -1.0)
        fallback = distance[:, shape].copy()
        if shape == 1:
            fallback[same, chosen[same, 0]] = -1.0
        chosen[:, shape] = np.where(allowed.any(axis=1), score.argmax(axis=1),
                                    fallback.argmax(axis=1))
    return chosen
