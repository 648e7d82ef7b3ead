"""Images with a box (and, where the set has them, an instance mask) for every object.

This is what detection and instance segmentation learn from, held in memory like every other
cnnlab set, in the per-image form torchvision's detection models take:

    images   uint8 N x C x H x W, all at one working size (they stack into one tensor, and a
             batch needs no padding);
    targets  one dict per image:
               boxes   float32 K x 4: x1, y1, x2, y2 in pixels of the working size, on pixel
                       edges: a box holding exactly columns 3, 4 and 5 has x1 = 3, x2 = 6, so
                       x2 - x1 is the width, as COCO's [x, y, w, h] counts it (torchvision's
                       masks_to_boxes gives x2 = 5, the last column's index, instead);
               labels  int64 K, 1..len(classes): 0 is torchvision's background, never a label;
               masks   uint8 K x H x W, 1 on the object's visible pixels; only for sets with
                       instance masks (shapes-objects, penn-fudan, coco:PATH with
                       segmentations), and then in every image's dict;
             an image without objects has K = 0: a valid negative, kept;
    classes  the object class names, without background: label k names classes[k - 1];
    labels   one int64 per image, only so that the catalogue's train / validation / test split
             can be stratified as for the other sets: the image's most frequent object label
             (ties: the smaller), 0 for an image without objects. It follows the targets'
             numbering (0: nothing), so it is not a class index into `classes`; detection tasks
             read `targets`, never these;
    problems (file, reason) for what the loader left out, for RUN/skipped.txt.

Targets stay plain tensors in memory (tv_tensors are tensors with a type, and `torch.save`, a
slice or a `to(device)` can drop that type); `to_tv` wraps one for the v2 transforms, which move
boxes and masks with the image only when they are typed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from .sources import LabelledImages
from .transforms import to_channels

Target = dict[str, torch.Tensor]


@dataclass
class BoxedImages(LabelledImages):
    """Images at one size with a target dict each (see the module's docstring)."""
    targets: list[Target]
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_masks(self) -> bool:
        return any("masks" in target for target in self.targets)


def split_label(target: Target) -> int:
    """The image's most frequent object label, the smaller on a tie; 0 without objects."""
    labels = target["labels"]
    if not len(labels):
        return 0
    return int(torch.bincount(labels).argmax())  # argmax: the first (smallest) of equal counts


def split_labels(targets: list[Target]) -> torch.Tensor:
    return torch.tensor([split_label(t) for t in targets], dtype=torch.int64)


def empty_target(height: int, width: int, masks: bool) -> Target:
    """No objects: K = 0, with a 0 x H x W mask tensor when the set has masks."""
    target = {"boxes": torch.zeros((0, 4), dtype=torch.float32),
              "labels": torch.zeros(0, dtype=torch.int64)}
    if masks:
        target["masks"] = torch.zeros((0, height, width), dtype=torch.uint8)
    return target


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """float32 K x 4 tight boxes on pixel edges of K x H x W masks; an empty mask gives a
    degenerate box (x2 <= x1), which SanitizeBoundingBoxes removes."""
    if not len(masks):
        return torch.zeros((0, 4), dtype=torch.float32)
    on = masks.bool()
    columns, rows = on.any(dim=1), on.any(dim=2)  # K x W, K x H
    width, height = masks.shape[2], masks.shape[1]
    x1 = columns.int().argmax(dim=1)
    x2 = width - columns.flip(1).int().argmax(dim=1)
    y1 = rows.int().argmax(dim=1)
    y2 = height - rows.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    boxes[~columns.any(dim=1)] = 0.0  # argmax of all-False is 0: say "nothing" plainly
    return boxes


def to_tv(image: torch.Tensor, target: Target) -> tuple[tv_tensors.Image, Target]:
    """One image and its target as tv_tensors (Image, BoundingBoxes in XYXY with the image's
    canvas size, Mask), so that v2 transforms move the boxes and masks with the pixels."""
    height, width = image.shape[-2:]
    typed = dict(target)
    typed["boxes"] = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY",
                                              canvas_size=(height, width))
    if "masks" in target:
        typed["masks"] = tv_tensors.Mask(target["masks"])
    return tv_tensors.Image(image), typed


def from_tv(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Back to plain tensors, with the dtypes of the representation."""
    plain = {key: value.as_subclass(torch.Tensor) for key, value in target.items()}
    plain["boxes"] = plain["boxes"].to(torch.float32)
    plain["labels"] = plain["labels"].to(torch.int64)
    if "masks" in plain:
        plain["masks"] = plain["masks"].to(torch.uint8)
    return image.as_subclass(torch.Tensor), plain


def fit(image: torch.Tensor, target: Target, size: tuple[int, int],
        channels: int | None = None) -> tuple[torch.Tensor, Target]:
    """An image (uint8 C x H x W) and its target straight to `size` (H, W): the image bilinearly
    with antialiasing, as Preprocess.fit_size resizes, the boxes scaled along each axis, the
    masks by nearest neighbour (an instance mask stays 0 and 1). `channels` (1 or 3) converts
    the image as Preprocess does. Straight, not cropped: no object is cut, and it is the
    geometry a new photograph gets at predict time."""
    if channels is not None:
        image = to_channels(image, channels)
    height, width = image.shape[-2:]
    if (height, width) == tuple(size):
        return image, target
    image = F.resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    scale = torch.tensor([size[1] / width, size[0] / height] * 2, dtype=torch.float32)
    resized = dict(target)
    resized["boxes"] = target["boxes"] * scale
    if "masks" in target:
        masks = target["masks"]
        resized["masks"] = (F.resize(masks[:, None], list(size),
                                     interpolation=InterpolationMode.NEAREST_EXACT,
                                     antialias=False)[:, 0] if len(masks)
                            else masks.new_zeros((0, *size)))
    return image, resized
