"""What every task's `predict` does before it answers: where its pictures go, and which of
the given files can be read (the rest are listed with the reason, never a traceback)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write_bytes
from ..data.images import decode_image
from ..errors import UserError


def output_folder(files: list[str], out_dir: str | None, default: str) -> Path | None:
    """`out_dir`, or the folder `default` beside the first image; never a file."""
    out = Path(out_dir) if out_dir else Path(files[0]).parent / default if files else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} is a file, not a folder.")
    return out


def readable(files: list[str], errors: list[dict]) -> Iterator[tuple[str, torch.Tensor]]:
    """(file, uint8 image) for each file that decodes; each other one joins `errors`."""
    for file in files:
        try:
            yield file, decode_image(file)
        except UserError as exc:
            errors.append({"file": str(file), "error": str(exc)})


def write_png(path: Path, array: np.ndarray) -> None:
    """An H x W (x 3) uint8 array as a PNG, written whole or not at all."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    atomic_write_bytes(path, buffer.getvalue())
