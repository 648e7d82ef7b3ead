"""`shapes`: synthetic circles, squares and triangles on textured backgrounds.

Why a synthetic set when MNIST and CIFAR exist:
- it is made on the spot, so it works offline and in tests with nothing to download;
- every image comes with the exact bounding box and pixel mask of its one shape, which the
  detection and segmentation work needs and which no hand-labelled set gives without error;
- the answer is known: a Grad-CAM heat map for "triangle" should light up the triangle's pixels,
  and a test can check that against the mask.

Each shape is drawn in one flat colour, well away from the colour of the background around it,
over a random mix of a smooth gradient, stripes and noise, so that a model has to learn the
outline rather than "the odd pixel out". Everything is computed for a whole batch of images at
once with numpy, so 10,000 images take a fraction of a second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from .sources import LabelledImages

CLASSES = ["circle", "square", "triangle"]
MIN_IMAGE_SIZE = 8
# Below 3 pixels a shape may cover no pixel centre at all, and every class looks alike anyway.
MIN_SHAPE_PIXELS = 3
# Images made per numpy batch. 512 measured about twice as fast as 2048: a batch's float32
# working arrays (6 MB at 32 x 32) stay in cache, and memory stays bounded at any count.
CHUNK = 512

# Background texture strengths, in 0-255 intensity units. They are bounded so that the
# background near a shape stays close to its local mean, and a shape colour SHAPE_CONTRAST
# from that mean stands out all along its outline (over 10,000 images, no pixel touching a
# shape came within 60 of the shape's colour).
GRADIENT_SPAN = 90  # largest change of a channel from one edge of the image to the other
STRIPE_AMPLITUDE = 30  # peak of a channel's sinusoidal stripes
STRIPE_PERIOD = (3.0, 12.0)  # pixels per stripe cycle
NOISE_LIMIT = 20  # largest per-pixel deviation of the uniform noise
SHAPE_CONTRAST = 130  # least RGB (Euclidean) distance of the shape colour from the local mean
COLOUR_TRIES = 16  # random colours tried per image before falling back to the far corner


@dataclass
class ShapesData(LabelledImages):
    """Images and labels as any data set has, plus where exactly each shape is."""

    boxes: torch.Tensor  # float32, N x 4: x1, y1, x2, y2 on pixel edges (x2 - x1 = width)
    masks: torch.Tensor  # bool, N x H x W: True on exactly the shape's pixels

    @property
    def mask_classes(self) -> list[str]:
        return ["background", *self.classes]

    @property
    def class_masks(self) -> torch.Tensor:
        """uint8 N x H x W for segmentation: 0 on the background, 1 + the shape's class on
        its pixels."""
        return torch.where(self.masks, (self.labels + 1).to(torch.uint8)[:, None, None],
                           torch.zeros((), dtype=torch.uint8))


def shapes(data_dir: str | None = None, download: bool = False) -> ShapesData:
    """The catalogue's `shapes` set: 4,000 images of 32 x 32, a third of each class, seed 0.

    Made in memory in well under a second; `data_dir` and `download` are accepted only so that
    every catalogued source is called the same way, since nothing is read or fetched.
    """
    return generate_shapes(4000, image_size=32, seed=0)


def generate_shapes(count: int, image_size: int = 32, seed: int = 0, *,
                    min_size_fraction: float = 0.25,
                    max_size_fraction: float = 0.75) -> ShapesData:
    """`count` RGB images of `image_size` squared, each holding one circle, square or triangle.

    A shape's extent (circle diameter, square side, triangle base and height) is drawn uniformly
    between the two fractions of the image size, and the shape lies wholly inside the image.
    The classes are balanced to within one image. The same seed gives identical bytes.
    """
    _check_arguments(count, image_size, min_size_fraction, max_size_fraction)
    rng = np.random.default_rng(seed)
    # A shuffled repeat of 0, 1, 2 rather than independent draws: every class gets its third.
    labels = rng.permutation(np.arange(count) % len(CLASSES))
    extent = (min_size_fraction, max_size_fraction)
    # max(count, 1): even an empty set goes through one (empty) chunk, to get its shapes right.
    parts = [_draw_chunk(rng, labels[start:start + CHUNK], image_size, extent)
             for start in range(0, max(count, 1), CHUNK)]
    images, masks, boxes = (np.concatenate(field) for field in zip(*parts))
    return ShapesData(torch.from_numpy(images), torch.from_numpy(labels).long(), list(CLASSES),
                      torch.from_numpy(boxes), torch.from_numpy(masks))


def _check_arguments(count, image_size, min_fraction, max_fraction) -> None:
    if count < 0:
        raise UserError(f"the number of shapes images must be 0 or more, not {count}.")
    if image_size < MIN_IMAGE_SIZE:
        raise UserError(f"shapes images must be at least {MIN_IMAGE_SIZE} pixels wide, "
                        f"not {image_size}.")
    if not 0 < min_fraction <= max_fraction <= 1:
        raise UserError("shape size fractions must satisfy 0 < min_size_fraction <= "
                        f"max_size_fraction <= 1, not {min_fraction} and {max_fraction}.")


def _draw_chunk(rng, labels, size, extent):
    """uint8 images, bool masks and float32 boxes for one batch of labels."""
    masks = rasterise(rng, labels, size, extent)
    boxes = tight_boxes(masks)
    background = backgrounds(rng, len(labels), size)
    colours = contrasting_colours(rng, background, boxes)
    images = np.where(masks[:, None], colours[:, :, None, None], background)
    return images, masks, boxes


def rasterise(rng, labels, size, extent):
    """Place each shape in a random square box inside the image and mark the pixels it covers.

    A pixel belongs to the shape when its centre does. Every shape is written in coordinates
    u, v running 0 -> 1 across its box, so one rule per class serves every size and position.
    """
    n = len(labels)
    side = np.maximum(rng.uniform(*extent, n) * size, MIN_SHAPE_PIXELS)
    left = rng.uniform(0, 1, n) * (size - side)
    top = rng.uniform(0, 1, n) * (size - side)
    orientation = rng.integers(0, 4, n)  # which side of the box a triangle's base lies on
    apex = rng.uniform(0, 1, n)  # where along the opposite side its apex lies
    centres = np.arange(size, dtype=np.float32) + 0.5
    u = (centres[None, None, :] - left[:, None, None]) / side[:, None, None]
    v = (centres[None, :, None] - top[:, None, None]) / side[:, None, None]
    u, v = u.astype(np.float32), v.astype(np.float32)
    masks = np.zeros((n, size, size), dtype=bool)
    for label, inside in enumerate((_circle, _square, _triangle)):
        pick = labels == label
        masks[pick] = inside(u[pick], v[pick], orientation[pick], apex[pick])
    return masks


def _circle(u, v, orientation, apex):
    return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25


def _square(u, v, orientation, apex):
    return (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)


def _triangle(u, v, orientation, apex):
    """Base along a whole side of the box, apex anywhere on the opposite side.

    Any such triangle covers exactly half its box, and with the apex free it ranges from right
    triangles to isosceles ones, in four orientations: varied, yet with a geometry tests can check.
    """
    o = orientation[:, None, None]
    along = np.where(o < 2, u, v)  # position along the base
    height = np.select([o == 0, o == 1, o == 2], [1 - v, v, u], 1 - u)  # distance from the base
    t = apex[:, None, None]
    return ((height >= 0) & (height <= 1)
            & (along >= t * height) & (along <= 1 - (1 - t) * height))


def tight_boxes(masks):
    """x1, y1, x2, y2 on pixel edges: the smallest box holding every mask pixel whole."""
    columns, rows = masks.any(axis=1), masks.any(axis=2)
    x1 = columns.argmax(axis=1)
    x2 = masks.shape[2] - columns[:, ::-1].argmax(axis=1)
    y1 = rows.argmax(axis=1)
    y2 = masks.shape[1] - rows[:, ::-1].argmax(axis=1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)


def backgrounds(rng, n, size):
    """uint8 backgrounds: a random base colour plus a random mix of gradient, stripes and noise.

    Each texture gets its own random strength per image (down to none), so some backgrounds are
    smooth, some striped, some grainy, and most a blend.
    """
    f32 = np.float32
    unit = (np.arange(size, dtype=f32) + 0.5) / size - 0.5  # pixel centres, -0.5 .. 0.5
    x, y = unit[None, None, None, :], unit[None, None, :, None]

    def direction():
        angle = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(f32)
        return x * np.cos(angle) + y * np.sin(angle)

    def strength(limit):  # per image and channel, so textures are coloured too
        return rng.uniform(-limit, limit, (n, 3, 1, 1)).astype(f32)

    # Summed in place into one buffer: at these sizes numpy's time goes to fresh memory.
    pixels = strength(GRADIENT_SPAN) * direction()
    pixels += rng.uniform(0, 255, (n, 3, 1, 1)).astype(f32)  # the base colour
    cycles = (size / rng.uniform(*STRIPE_PERIOD, (n, 1, 1, 1))).astype(f32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(f32)
    pixels += strength(STRIPE_AMPLITUDE) * np.sin(2 * np.pi * cycles * direction() + phase)
    # Uniform noise from raw random bytes: about ten times cheaper than Gaussian noise, and at
    # this strength it looks no different.
    noise = np.frombuffer(rng.bytes(pixels.size), np.uint8).reshape(pixels.shape).astype(f32)
    noise -= 127.5
    noise *= rng.uniform(0, NOISE_LIMIT / 127.5, (n, 1, 1, 1)).astype(f32)
    pixels += noise
    np.rint(pixels, out=pixels)
    return np.clip(pixels, 0, 255, out=pixels).astype(np.uint8)


def contrasting_colours(rng, background, boxes):
    """A random colour per image, at least SHAPE_CONTRAST from the background in the shape's box.

    The first of several random tries that is far enough wins, so colours stay varied; if none
    is, the corner of the RGB cube opposite the local mean is always more than 220 away.
    """
    local_mean = _box_means(background, boxes)  # n x 3
    tries = rng.integers(0, 256, (len(boxes), COLOUR_TRIES, 3))
    far_enough = np.linalg.norm(tries - local_mean[:, None], axis=2) >= SHAPE_CONTRAST
    chosen = tries[np.arange(len(boxes)), far_enough.argmax(axis=1)]
    opposite = np.where(local_mean < 127.5, 255, 0)
    colours = np.where(far_enough.any(axis=1)[:, None], chosen, opposite)
    return colours.astype(np.uint8)


def _box_means(images, boxes):
    """Mean colour of each uint8 image inside its box: n x 3 float."""
    grid = np.arange(images.shape[-1])
    x1, y1, x2, y2 = (boxes[:, k, None] for k in range(4))
    inside = (((grid >= x1) & (grid < x2))[:, None, :]
              & ((grid >= y1) & (grid < y2))[:, :, None])  # n x H x W
    totals = np.einsum("nchw,nhw->nc", images.astype(np.float32), inside.astype(np.float32))
    return totals / inside.sum(axis=(1, 2))[:, None]
