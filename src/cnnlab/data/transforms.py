"""Preprocessing: turn any image into exactly what the model was trained on.

The same Preprocess (channels, size, mean, std) is applied to the training set, recorded in
RUN/config.json, and rebuilt by evaluate and predict, so a user's PNG gets the treatment the
training images got. Pretrained weights bring their own: ImageNet models were evaluated by
resizing the shorter side (to 256) and cutting out the centre (224x224), so `resize` does that.
"""
from __future__ import annotations

import functools
import platform
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError

# Resizing, cropping and the grey conversion are torchvision's transforms v2 computations,
# rewritten on torch alone: importing any part of torchvision imports all of it, torch._dynamo
# included (seconds of start-up for a run that trains on the digits). tests/test_same_results.py
# checks them pixel for pixel against torchvision's.


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
        return rgb_to_grayscale(images)
    raise UserError(f"cannot turn {have}-channel images into {channels}-channel input.")


def rgb_to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma (torchvision's weights), in the images' own number type (truncated)."""
    r, g, b = images.unbind(dim=-3)
    luma = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114)
    return luma.unsqueeze(dim=-3).to(images.dtype)


# Preprocess.interpolation -> torch.nn.functional.interpolate's mode
INTERPOLATIONS = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}


def _native_uint8(mode: str) -> bool:
    """Where interpolate resizes uint8 itself (torchvision's rule): bilinear on AVX2/AVX512 or
    Arm CPUs, bicubic everywhere on a CPU; elsewhere the pixels go through float32."""
    if mode == "bilinear":
        return (torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
                or platform.machine() in ("aarch64", "arm64"))
    return mode == "bicubic"


def shorter_side_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(H, W) with the shorter side `side` and the aspect ratio kept (rounded down)."""
    if width <= height:
        return int(side * height / width), side
    return side, int(side * width / height)


def resize(images: torch.Tensor, size, mode: str = "bilinear",
           antialias: bool = True) -> torch.Tensor:
    """C x H x W or N x C x H x W images to `size` (H, W), or with a one-element `size` their
    shorter side to it; uint8 stays uint8 (rounded), as torchvision's v2 resize does."""
    *lead, channels, height, width = images.shape
    new = (shorter_side_size(height, width, size[0]) if len(size) == 1
           else (int(size[0]), int(size[1])))
    if new == (height, width):
        return images
    if images.numel() == 0:
        return images.reshape(*lead, channels, *new)
    smooth = mode in ("bilinear", "bicubic")
    grid = images.reshape(-1, channels, height, width)
    accepted = (torch.float32, torch.float64) + (
        (torch.uint8,) if not smooth or (grid.device.type == "cpu" and _native_uint8(mode))
        else ())
    if grid.is_contiguous(memory_format=torch.channels_last) and grid.shape[0] == 1 \
            and images.numel() != grid.stride()[0]:
        # torchvision's restride: a single channels_last image stays channels_last
        grid = grid.as_strided(grid.shape, (images.numel(), *grid.stride()[1:]))
    dtype = grid.dtype
    cast = dtype not in accepted
    out = F.interpolate(grid.to(torch.float32) if cast else grid, size=list(new), mode=mode,
                        align_corners=False if smooth else None,
                        antialias=antialias and smooth)
    if cast:
        if mode == "bicubic" and dtype == torch.uint8:
            out = out.clamp_(0, 255)
        if not dtype.is_floating_point:
            out = out.round_()
        out = out.to(dtype)
    return out.reshape(*lead, channels, *new)


def center_crop(images: torch.Tensor, size) -> torch.Tensor:
    """The central `size` (H, W) of the images, padded with zeros where they are smaller."""
    height, width = int(size[0]), int(size[1])
    have_h, have_w = images.shape[-2:]
    if height > have_h or width > have_w:
        pad_h, pad_w = max(height - have_h, 0), max(width - have_w, 0)
        images = F.pad(images, [pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2],
                       value=0.0)
        have_h, have_w = images.shape[-2:]
        if (have_h, have_w) == (height, width):
            return images
    top, left = int(round((have_h - height) / 2.0)), int(round((have_w - width) / 2.0))
    return images[..., top:top + height, left:left + width]


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
            return center_crop(resize(images, [self.resize], mode), self.size)
        if tuple(images.shape[-2:]) == tuple(self.size):
            return images
        return resize(images, list(self.size), mode)

    def fit_mask_size(self, masks: torch.Tensor) -> torch.Tensor:
        """Class-index masks (N x H x W or H x W) through fit_size's geometry, nearest
        neighbour: every pixel keeps a class that was there, never a blend of two."""
        grid = masks[..., None, :, :]
        if self.resize is not None:
            grid = center_crop(resize(grid, [self.resize], "nearest-exact"), self.size)
        elif tuple(grid.shape[-2:]) != tuple(self.size):
            grid = resize(grid, list(self.size), "nearest-exact")
        return grid[..., 0, :, :]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images at the model's size -> normalised float32 model input:
        (x / 255 - mean) / std, computed as x * scale + shift in place (one pass fewer than
        scaling, subtracting and dividing: this runs on every training batch)."""
        scale, shift = _scale_shift(self.mean, self.std, images.device)
        return images.to(torch.float32, copy=True).mul_(scale).add_(shift)

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


@functools.lru_cache(maxsize=64)
def _scale_shift(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """normalise's 1 / (255 std) and -mean / std as C x 1 x 1 float32 tensors on `device`,
    made once per preprocessing and device: four tiny tensor operations fewer every batch."""
    shape = (len(mean), 1, 1)
    with torch.inference_mode(False):  # usable outside inference mode too, once cached
        std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        return 1 / (255 * std), -mean / std


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
