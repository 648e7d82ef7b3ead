"""Preprocessing: turn any image into exactly what the model was trained on.

The same Preprocess (channels, size, mean, std) is applied to the training set, recorded in
RUN/config.json, and rebuilt by evaluate and predict, so a user's PNG gets the treatment the
training images got. Pretrained weights bring their own: ImageNet models were evaluated by
resizing the shorter side (to 256) and cutting out the centre (224x224), so `resize` does that.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..errors import UserError


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey to colour by repetition, colour to grey by luminance, alpha dropped."""
    have = images.shape[-3]
    if have == 4:
        images, have = images[..., :3, :, :], 3
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    if have == 3 and channels == 1:
        return F.rgb_to_grayscale(images)
    raise UserError(f"cannot turn {have}-channel images into {channels}-channel input.")


INTERPOLATIONS = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                  "nearest": InterpolationMode.NEAREST}


@dataclass
class Preprocess:
    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Shorter side before a centre crop to `size`; None: resize straight to `size`.
    resize: int | None = None
    interpolation: str = "bilinear"

    def fit_size(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> uint8 images with the model's channels and size."""
        images = to_channels(images, self.channels)
        mode = INTERPOLATIONS[self.interpolation]
        if self.resize is not None:
            images = F.resize(images, [self.resize], interpolation=mode, antialias=True)
            return F.center_crop(images, list(self.size))
        if tuple(images.shape[-2:]) == tuple(self.size):
            return images
        return F.resize(images, list(self.size), interpolation=mode, antialias=True)

    def fit_mask_size(self, masks: torch.Tensor) -> torch.Tensor:
        """Class-index masks (N x H x W or H x W) through fit_size's geometry, nearest
        neighbour: every pixel keeps a class that was there, never a blend of two."""
        grid = masks[..., None, :, :]
        nearest = InterpolationMode.NEAREST_EXACT
        if self.resize is not None:
            grid = F.center_crop(F.resize(grid, [self.resize], interpolation=nearest,
                                          antialias=False), list(self.size))
        elif tuple(grid.shape[-2:]) != tuple(self.size):
            grid = F.resize(grid, list(self.size), interpolation=nearest, antialias=False)
        return grid[..., 0, :, :]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images at the model's size -> normalised float32 model input:
        (x / 255 - mean) / std, computed as x * scale + shift in place (one pass fewer than
        scaling, subtracting and dividing: this runs on every training batch)."""
        shape = (len(self.mean), 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=images.device).view(shape)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=images.device).view(shape)
        return images.to(torch.float32, copy=True).mul_(1 / (255 * std)).add_(-mean / std)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (C x H x W or N x C x H x W) -> normalised float model input."""
        return self.normalise(self.fit_size(images))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocess":
        # resize and interpolation came later: a config.json without them resized straight.
        interpolation = values.get("interpolation", "bilinear")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {interpolation!r}")
        return cls(values["channels"], tuple(values["size"]), tuple(values["mean"]),
                   tuple(values["std"]), values.get("resize"), interpolation)

    @classmethod
    def fit(cls, images: torch.Tensor, channels: int, size) -> "Preprocess":
        """Per-channel mean and std of the (training) images as the model will see them."""
        sized = cls(channels, tuple(size), (0.0,) * channels, (1.0,) * channels).fit_size(images)
        mean, std = channel_stats(sized)
        return cls(channels, tuple(size), mean, std)


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per channel of uint8 N x C x H x W images, on the 0-1 scale.

    Summed in chunks so that 50,000 CIFAR images never become one 1.2 GB float64 copy."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        pixels = images[start:start + chunk].transpose(0, 1).reshape(images.shape[1], -1)
        pixels = pixels.to("cpu", torch.float64) / 255
        total += pixels.sum(dim=1)
        squares += (pixels * pixels).sum(dim=1)
    count = images.numel() / images.shape[1]
    mean = total / count
    # Sample (n - 1) variance, as torch.std gives; a blank channel must not divide by zero.
    std = ((squares - count * mean * mean) / max(count - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())
