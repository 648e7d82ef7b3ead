"""Preprocessing: turn any image into exactly what the model was trained on.

The same Preprocess (channels, size, mean, std) is applied to the training set, recorded in
RUN/config.json, and rebuilt by evaluate and predict, so a user's PNG gets the treatment the
training images got.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2
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


@dataclass
class Preprocess:
    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def pipeline(self) -> v2.Compose:
        return v2.Compose([
            v2.Lambda(lambda x: to_channels(x, self.channels)),
            v2.Resize(list(self.size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(self.mean), list(self.std)),
        ])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (C x H x W or N x C x H x W) -> normalised float model input."""
        return self.pipeline()(images)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocess":
        return cls(values["channels"], tuple(values["size"]),
                   tuple(values["mean"]), tuple(values["std"]))

    @classmethod
    def fit(cls, images: torch.Tensor, channels: int, size) -> "Preprocess":
        """Per-channel mean and std of the (training) images as the model will see them."""
        unnormalised = cls(channels, tuple(size), (0.0,) * channels, (1.0,) * channels)
        pixels = unnormalised(images).transpose(0, 1).reshape(channels, -1).double()
        std = pixels.std(dim=1).clamp_min(1e-6)  # a blank channel must not divide by zero
        return cls(channels, tuple(size), tuple(pixels.mean(dim=1).tolist()), tuple(std.tolist()))


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as uint8 C x H x W; a missing or non-image file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file.")
    try:
        with Image.open(path) as img:
            img = img.convert("RGBA" if "A" in img.getbands() else
                              "RGB" if len(img.getbands()) >= 3 else "L")
            return F.pil_to_tensor(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path} is not a readable image ({type(exc).__name__}).") from None
