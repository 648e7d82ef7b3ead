"""The GAN's sample grids (gan.py): the same fixed noise drawn every epoch into
RUN/samples/epoch_NNN.png, so the grids animate one training (RUN/samples/samples.gif)."""
from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from ..atomic import atomic_write_bytes

SAMPLES = "samples"  # their folder in the run folder
GRID_TILE = 32  # smallest side of one sample in the grid, in pixels (8x8 digits drawn 4x)


def sample_tiles(model: nn.Module) -> torch.Tensor:
    """The fixed-noise images as uint8 3 x H x W grid, enlarged to GRID_TILE per image."""
    images = (model.sample_grid_images().float().cpu() + 1) / 2
    side = images.shape[-1]
    if side < GRID_TILE:
        images = F.interpolate(images, scale_factor=GRID_TILE // side, mode="nearest")
    grid = make_grid(images.clamp(0, 1), nrow=8, padding=2, pad_value=1.0)
    return (grid * 255).round().to(torch.uint8)


def png_bytes(grid: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buffer, "PNG")
    return buffer.getvalue()


def save_samples(model: nn.Module, run_dir: Path, epoch: int) -> Path:
    path = Path(run_dir) / SAMPLES / f"epoch_{epoch:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png_bytes(sample_tiles(model)))
    return path


def sample_files(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / SAMPLES).glob("epoch_*.png"))


def save_animation(run_dir: Path, milliseconds: int = 400) -> Path | None:
    """RUN/samples/samples.gif: every epoch's grid in order, looping."""
    files = sample_files(run_dir)
    if not files:
        return None
    frames = [Image.open(f).convert("RGB") for f in files]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:],
                   duration=milliseconds, loop=0)
    path = Path(run_dir) / SAMPLES / "samples.gif"
    atomic_write_bytes(path, buffer.getvalue())
    return path
