"""Augmentation that moves boxes and masks with the image, one image at a time (transforms v2).

A training image and its target (boxes.py) go through:
1. a horizontal flip with probability 1/2;
2. scale jitter: resized by a factor drawn uniformly from `scale` (aspect ratio kept; masks by
   nearest neighbour, boxes scaled);
3. a random crop back to the image's own size, padded with zeros (black, no object) where the
   jittered image is smaller: a zoom in or out with a random shift, so the output has the
   working size and images still batch into one tensor;
4. boxes tightened to their masks, where there are masks: a crop that cuts a triangle can
   leave its clipped box taller than what is left of it, and a mask says exactly what is
   left. The box becomes the intersection of the clipped box with the mask's extent (for
   shapes, whose boxes are their masks' extents, exactly the visible part's extent);
5. SanitizeBoundingBoxes: an object cropped away (a box under 1 pixel wide or tall) is removed
   with its label and its mask.

Every random draw comes from torch's global generator, as every v2 transform's does, so a seed
(torch.manual_seed, or a DataLoader worker's seed) fixes the result. Presets share the names
of augment.py's, so a catalogue entry's `augment` means the same kind of thing for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import unknown_name
from .boxes import Target, from_tv, mask_boxes, to_tv


@dataclass(frozen=True)
class BoxAugment:
    flip: bool = False
    scale: tuple[float, float] = (1.0, 1.0)  # resize factors drawn from; (1, 1): no jitter

    @property
    def active(self) -> bool:
        return self.flip or tuple(self.scale) != (1.0, 1.0)


@lru_cache(maxsize=16)  # one pipeline per preset and size, not one per image
def _geometry(augment: BoxAugment, size: tuple[int, int]) -> v2.Transform:
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(0.5)] if augment.flip else []
    if tuple(augment.scale) != (1.0, 1.0):
        short = min(size)
        low, high = (max(1, round(short * s)) for s in augment.scale)
        # RandomResize: the shorter side to an integer in [low, high], aspect kept.
        steps += [v2.RandomResize(low, high + 1, antialias=True),
                  v2.RandomCrop(list(size), pad_if_needed=True, fill=0)]
    return v2.Compose(steps)


def augment_one(image: torch.Tensor, target: Target, augment: BoxAugment,
                ) -> tuple[torch.Tensor, Target]:
    """One uint8 C x H x W image and its target -> augmented, same size, same dict keys."""
    if not augment.active:
        return image, target
    size = tuple(image.shape[-2:])
    moved_image, moved = _geometry(augment, size)(*to_tv(image, target))
    if "masks" in moved and len(moved["masks"]):
        tight = mask_boxes(moved["masks"])
        boxes = moved["boxes"].as_subclass(torch.Tensor)
        inner = torch.cat([torch.maximum(boxes[:, :2], tight[:, :2]),
                           torch.minimum(boxes[:, 2:], tight[:, 2:])], dim=1)
        moved["boxes"] = tv_tensors.wrap(inner, like=moved["boxes"])
    moved_image, moved = v2.SanitizeBoundingBoxes(min_size=1)(moved_image, moved)
    return from_tv(moved_image, moved)


class BoxAugmenter:
    """`augment_one` as a callable for a Dataset: (image, target) -> (image, target)."""

    def __init__(self, augment: BoxAugment):
        self.augment = augment

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        return augment_one(image, target, self.augment)


PRESETS = {
    "none": BoxAugment(),
    # A quarter smaller or larger: objects' sizes vary, and most of an object stays in view.
    "flip-crop": BoxAugment(flip=True, scale=(0.75, 1.25)),
    "strong": BoxAugment(flip=True, scale=(0.5, 1.5)),
}


def box_preset(name: str) -> BoxAugment:
    if name not in PRESETS:
        raise unknown_name("augmentation preset", name, PRESETS)
    return PRESETS[name]
