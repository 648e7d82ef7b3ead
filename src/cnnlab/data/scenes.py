"""`shapes-objects`: several circles, squares and triangles per image, each with its exact box
and instance mask: the offline detection and instance segmentation set.

The shapes are drawn by shapes.py's own code (its rasteriser, tight boxes, textured
backgrounds and contrasting colours), one object "slot" at a time for a whole batch of
images, so `shapes` itself is unchanged, byte for byte.

Objects never overlap: a shape is placed only where its box keeps GAP pixels of background
from every box already in the image, and a placement that does not fit is drawn again, up to
PLACEMENT_TRIES times; after that the image keeps the objects it has. So every mask is the
object's whole visible shape, its box is exactly the mask's extent, and two objects never
touch (two touching squares of similar colours would read as one rectangle: no detector can
be blamed for that). Every image holds at least one object (the first always fits).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .boxes import BoxedImages, split_labels
from .shapes import (CHUNK, CLASSES, MIN_IMAGE_SIZE, backgrounds, contrasting_colours,
                     rasterise, tight_boxes)

# Pixels of background kept between the boxes of two objects.
GAP = 2
# Draws of a new object's size and position before giving up on it for that image.
PLACEMENT_TRIES = 20


def detection_shapes(data_dir: str | None = None, download: bool = False) -> BoxedImages:
    """The catalogue's `shapes-objects`: 2,000 images of 64 x 64 with 1 to 3 shapes, seed 0.

    Made in memory; `data_dir` and `download` are accepted only so that every catalogued
    source is called the same way."""
    return generate_scenes(2000, image_size=64, seed=0)


def generate_scenes(count: int, image_size: int = 64, seed: int = 0, max_objects: int = 3, *,
                    min_size_fraction: float = 0.15,
                    max_size_fraction: float = 0.4) -> BoxedImages:
    """`count` RGB images of `image_size` squared, each with 1 to `max_objects` shapes.

    The number of objects is uniform over 1..max_objects before placement (a crowded image
    may keep fewer, see the module docstring); each object's class is uniform over
    circle, square and triangle, its extent uniform between the two fractions of the image
    size. Targets: boxes on pixel edges, labels 1 (circle), 2 (square), 3 (triangle), masks
    uint8 K x H x W. The same arguments give identical bytes.
    """
    if count < 0:
        raise UserError(f"the number of scenes must be 0 or more, not {count}.")
    if image_size < MIN_IMAGE_SIZE:
        raise UserError(f"scene images must be at least {MIN_IMAGE_SIZE} pixels wide, "
                        f"not {image_size}.")
    if max_objects < 1:
        raise UserError(f"a scene holds at least one object; max_objects {max_objects} is "
                        "too few.")
    if not 0 < min_size_fraction <= max_size_fraction <= 1:
        raise UserError("shape size fractions must satisfy 0 < min_size_fraction <= "
                        f"max_size_fraction <= 1, not {min_size_fraction} and "
                        f"{max_size_fraction}.")
    rng = np.random.default_rng(seed)
    extent = (min_size_fraction, max_size_fraction)
    images, targets = [], []
    for start in range(0, max(count, 1), CHUNK):
        n = min(CHUNK, count - start)
        chunk_images, chunk_targets = _draw_scenes(rng, n, image_size, max_objects, extent)
        images.append(chunk_images)
        targets += chunk_targets
    images = torch.from_numpy(np.concatenate(images))
    return BoxedImages(images, split_labels(targets), list(CLASSES), targets)


def _draw_scenes(rng, n, size, max_objects, extent):
    """uint8 images n x 3 x size x size and their targets."""
    wanted = rng.integers(1, max_objects + 1, n)
    background = backgrounds(rng, n, size)
    placed = np.zeros((n, max_objects), dtype=bool)
    boxes = np.zeros((n, max_objects, 4), dtype=np.float32)
    masks = np.zeros((n, max_objects, size, size), dtype=bool)
    classes = rng.integers(0, len(CLASSES), (n, max_objects))
    for slot in range(max_objects):
        pending = np.flatnonzero(wanted > slot)
        for _ in range(PLACEMENT_TRIES):
            if not len(pending):
                break
            candidate = rasterise(rng, classes[pending, slot], size, extent)
            box = tight_boxes(candidate)
            fits = ~_near(box, boxes[pending, :slot], placed[pending, :slot])
            accepted = pending[fits]
            masks[accepted, slot], boxes[accepted, slot] = candidate[fits], box[fits]
            placed[accepted, slot] = True
            pending = pending[~fits]
    images = background.copy()
    for slot in range(max_objects):
        rows = np.flatnonzero(placed[:, slot])
        if not len(rows):
            continue
        # Each object's colour stands out from the background around it, as in `shapes`.
        colours = contrasting_colours(rng, background[rows], boxes[rows, slot])
        images[rows] = np.where(masks[rows, slot][:, None], colours[:, :, None, None],
                                images[rows])
    targets = []
    for i in range(n):
        keep = placed[i]
        targets.append({"boxes": torch.from_numpy(boxes[i, keep].copy()),
                        "labels": torch.from_numpy(classes[i, keep] + 1).long(),
                        "masks": torch.from_numpy(masks[i, keep].astype(np.uint8))})
    return images, targets


def _near(box, others, present):
    """For each candidate box (m x 4), whether it comes within GAP pixels of a present box
    among `others` (m x s x 4)."""
    if not others.shape[1]:
        return np.zeros(len(box), dtype=bool)
    b = box[:, None]
    apart = ((b[..., 0] >= others[..., 2] + GAP) | (others[..., 0] >= b[..., 2] + GAP)
             | (b[..., 1] >= others[..., 3] + GAP) | (others[..., 1] >= b[..., 3] + GAP))
    return (present & ~apart).any(axis=1)
