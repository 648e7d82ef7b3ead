"""The two pictures style transfer starts from: an image file, or sample:NAME for one of the
photographs scikit-image and scikit-learn ship (the ones `cnnlab kernels --sample` offers)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..course.kernels import read_image_file, sample_image, sample_names, to_float_image
from ..errors import UserError

SAMPLE = "sample:"


def picture_label(spec: str) -> str:
    """'sample:chelsea' -> 'chelsea', 'photos/cat.jpg' -> 'cat': a name for titles and folders."""
    return spec[len(SAMPLE):] if spec.startswith(SAMPLE) else Path(spec).stem


def read_picture(spec: str) -> torch.Tensor:
    """1 x 3 x H x W float32 in [0, 1]; grey pictures get three equal channels."""
    if spec.startswith(SAMPLE):
        pixels = sample_image(spec[len(SAMPLE):])  # an unknown name lists the samples
    elif not Path(spec).exists():
        raise UserError(f"{spec} does not exist; give an image file, or sample:NAME for a "
                        f"shipped photograph ({', '.join(sample_names())}).")
    else:
        pixels = read_image_file(spec)
    image = to_float_image(pixels).float()[None]
    return image.expand(-1, 3, -1, -1).clone() if image.shape[1] == 1 else image


def resized(image: torch.Tensor, size: int) -> torch.Tensor:
    """The image with its longer side `size` pixels, its aspect kept (antialiased, so a
    shrunk photograph keeps its texture rather than aliasing it)."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = F.interpolate(image, size=shape, mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1)
