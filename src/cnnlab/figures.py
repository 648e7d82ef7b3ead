"""Pictures as arrays: scaling maps to grey levels, tiling them, colouring heat maps, saving.

The inspection commands build what they show as numpy arrays first and hand only the finished
array to matplotlib for titles and layout. That keeps the content testable: a test reads the
same array the figure shows, not pixels scraped back out of a PNG.

Every picture is a matplotlib.figure.Figure made directly, never through pyplot: pyplot keeps
figures alive in its global list and binds them to a backend, and a library that picked the
backend at import (matplotlib.use) would take the choice away from the notebook or program
that imports it. A bare Figure renders to a file with whichever canvas the format needs.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .errors import UserError

FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def unit_range(values) -> np.ndarray:
    """Min-max scaled to [0, 1]; a constant map becomes mid-grey rather than a division by 0."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array
    low, high = array.min(), array.max()
    if high - low < 1e-12:
        return np.full(array.shape, 0.5)
    return (array - low) / (high - low)


def symmetric_range(values) -> np.ndarray:
    """Kernels: 0.5 is a zero weight, and the largest |weight| reaches 0 or 1, so the sign of
    every weight reads as darker or lighter than the grey of 'no effect'."""
    array = np.asarray(values, dtype=np.float64)
    top = np.abs(array).max(initial=0.0)
    return np.full(array.shape, 0.5) if top < 1e-12 else 0.5 + 0.5 * array / top


def mosaic(tiles: list[np.ndarray], columns: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Equal-sized H x W (or H x W x 3) tiles in rows of at most `columns`, `gap` pixels of
    `fill` between them; tile i sits at row i // columns, column i % columns."""
    from torchvision.utils import make_grid  # torchvision's import takes seconds: when drawn

    batch = torch.from_numpy(np.stack(tiles).astype(np.float64))
    grey = batch.dim() == 3
    batch = batch[:, None] if grey else batch.permute(0, 3, 1, 2)
    grid = make_grid(batch, nrow=columns, padding=gap, pad_value=fill)
    if len(tiles) > 1:  # make_grid frames the grid with `gap` too (a lone tile comes back bare)
        grid = grid[:, gap:grid.shape[1] - gap, gap:grid.shape[2] - gap]
    # make_grid repeats a grey tile into three channels; one is the map.
    return (grid[0] if grey else grid.permute(1, 2, 0)).numpy()


def tile_position(index: int, columns: int, tile_hw, gap: int = 1) -> tuple[int, int]:
    """Top-left pixel of tile `index` in a mosaic (for tests and annotations)."""
    return (index // columns) * (tile_hw[0] + gap), (index % columns) * (tile_hw[1] + gap)


def image_to_float(image: torch.Tensor) -> np.ndarray:
    """uint8 C x H x W -> float H x W x 3 in [0, 1] (grey repeated), for drawing on."""
    array = image.detach().cpu().numpy().astype(np.float64) / 255.0
    array = np.moveaxis(array, 0, -1)
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """A [0, 1] map -> RGB with matplotlib's 'jet', the colouring of the Grad-CAM paper."""
    import matplotlib  # a second of start-up, paid by the commands that draw

    return matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3]


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Heat colours blended over an H x W x 3 image in [0, 1]."""
    return (1 - alpha) * image + alpha * heat_colours(heat)


def checked_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UserError(f"cannot save a picture as {Path(path).suffix or path}: its name must "
                        f"end in one of {', '.join('.' + f for f in FORMATS)}.")
    return suffix


# matplotlib: "Glyph 29483 (\\N{CJK UNIFIED IDEOGRAPH-732B}) missing from font(s) DejaVu Sans."
_MISSING_GLYPH = re.compile(r"Glyph (?P<code>\d+) \(.*?\) missing from font")


def figure_bytes(fig, fmt: str = "png", dpi: int = 110, **savefig) -> bytes:
    """The rendered figure. matplotlib's warning per missing glyph (one for every character of
    a CJK or emoji class name, each time it is measured and drawn) becomes one sentence."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", **savefig)
    missing = []
    for warning in caught:
        found = _MISSING_GLYPH.search(str(warning.message))
        if found is None:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
        elif chr(int(found["code"])) not in missing:
            missing.append(chr(int(found["code"])))
    if missing:
        from .logs import LOGGER
        LOGGER.warning(f"the font of this picture lacks {len(missing)} character"
                       f"{'s' if len(missing) > 1 else ''} of its labels "
                       f"({' '.join(missing[:8])}), drawn as empty boxes; installing a font "
                       "that has them (e.g. Debian's fonts-noto-cjk) and naming it in "
                       "matplotlib's font.sans-serif setting shows them.")
    return buffer.getvalue()



def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` atomically in the format its name asks for; a bad folder is a UserError."""
    path = Path(path)
    fmt = checked_format(path)
    data = figure_bytes(fig, "jpeg" if fmt == "jpg" else fmt, dpi)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist.")
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}.") from None
    return path
