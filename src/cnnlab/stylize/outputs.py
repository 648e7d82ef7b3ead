"""What `cnnlab stylize` leaves behind, in a new run folder:

    RUN/result.png     the stylised picture
    RUN/sheet.png      content | style | result, with titles
    RUN/curves.png     content and style loss at each step (the style loss on a log scale)
    RUN/stylize.json   the settings, the losses at the start and the end, and every step's

`--out FILE` writes the picture there too. A picture is marked as cnnlab's (PNG text or
JPEG EXIF 'Software'), so an existing FILE is replaced only when cnnlab wrote it.
"""
from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import UserError
from ..figures import save_figure

RESULT, SHEET, CURVES, NUMBERS = "result.png", "sheet.png", "curves.png", "stylize.json"
MARK, SOFTWARE_TAG = "cnnlab stylize", 0x0131  # EXIF's Software
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def new_run_folder(content: str, style: str, root: str | Path = "runs") -> Path:
    """runs/<timestamp>-stylize-<content>-<style>, made here and now: mkdir fails on a folder
    that exists, so two runs never share one."""
    slug = lambda text: re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:40] or "image"  # noqa: E731
    stem = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-stylize-{slug(content)}-{slug(style)}"
    path, n = stem, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = Path(f"{stem}-{n}")
        except OSError as exc:
            raise UserError(f"cannot create run folder {path}: {exc.strerror}.") from None


def _made_by_cnnlab(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return MARK in (img.info.get("Software"), img.getexif().get(SOFTWARE_TAG))
    except (OSError, ValueError, SyntaxError):
        return False


def check_out(out: str | Path | None) -> Path | None:
    """Refuse a bad --out before the work starts rather than after it."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() not in PICTURE_FORMATS:
        raise UserError(f"--out {path} must end in .png, .jpg or .jpeg.")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist.")
    if path.exists() and not _made_by_cnnlab(path):
        raise UserError(f"{path} exists and was not written by cnnlab stylize; choose "
                        "another --out or remove it.")
    return path


def to_array(image: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W in [0, 1] -> H x W x 3 uint8."""
    pixels = image[0].detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.rint(pixels * 255).astype(np.uint8)


def save_picture(image: torch.Tensor, path: Path) -> Path:
    """The picture, atomically, marked as cnnlab's."""
    fmt, buffer = PICTURE_FORMATS[path.suffix.lower()], io.BytesIO()
    picture = Image.fromarray(to_array(image))
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", MARK)
        picture.save(buffer, fmt, pnginfo=info)
    else:
        exif = Image.Exif()
        exif[SOFTWARE_TAG] = MARK
        picture.save(buffer, fmt, quality=95, exif=exif)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}.") from None
    return path


def save_sheet(images: list[torch.Tensor], titles: list[str], path: Path) -> Path:
    from matplotlib.figure import Figure
    heights = [im.shape[-2] / im.shape[-1] for im in images]
    fig = Figure(figsize=(4.2 * len(images), 4.2 * max(heights) + 0.6))
    for ax, image, title in zip(fig.subplots(1, len(images)), images, titles):
        ax.imshow(to_array(image))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def save_curves(history, title: str, path: Path) -> Path:
    """Two panels: the content loss (linear: it starts at 0) and the style loss (log: it
    falls by orders of magnitude)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 3.8))
    steps = np.arange(len(history.content))
    for ax, values, name, log in zip(fig.subplots(1, 2), (history.content, history.style),
                                     ("content loss", "style loss"), (False, True)):
        ax.plot(steps, values, color="tab:blue" if not log else "tab:red")
        ax.set_yscale("log" if log else "linear")
        ax.set_xlabel("step (evaluations of loss and gradient)")
        ax.set_title(f"{name} (relative squared error)", fontsize=10)
        ax.grid(alpha=0.3, which="both" if log else "major")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def save_numbers(result: dict, history, path: Path) -> Path:
    record = {**result, "history": {"content_loss": history.content,
                                    "style_loss": history.style, "tv_loss": history.tv}}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
