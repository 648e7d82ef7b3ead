"""Decoding one image file the way a user means it, or saying exactly why not.

Real folders hold truncated downloads, empty files, text files with an image extension,
phone photos stored sideways with an EXIF note, 16-bit scans, CMYK prints, palette GIFs.
Each becomes a uint8 C x H x W tensor (1 channel for grey, 3 for colour) or a BadImage
with the reason, so a data set can skip it and tell the user.
"""
from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

# PIL's own default; an image claiming more pixels is refused from its header alone.
MAX_PIXELS = 89_478_485


class BadImage(UserError):
    """A file that cannot be used as an image; the message is the reason, `kind` its sort:
    "missing", "empty", "not-image", "too-large" or "damaged" (a service maps it to an HTTP
    status: serve/limits.py)."""

    def __init__(self, message: str, kind: str = "damaged"):
        super().__init__(message)
        self.kind = kind


def _to_8bit(img: Image.Image) -> Image.Image:
    """16- and 32-bit integer images scaled into 0-255 (PIL's convert('L') would clip them)."""
    array = np.asarray(img)
    top = 65535 if img.mode.startswith("I;16") or array.max(initial=0) > 255 else 255
    if img.mode == "F":
        top = max(float(array.max(initial=0)), 1.0)
    scaled = np.clip(array.astype(np.float64) * (255.0 / top), 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def _normalise_mode(img: Image.Image) -> Image.Image:
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("1", "LA"):
        return img.convert("L")
    if img.mode.startswith("I") or img.mode == "F":
        return _to_8bit(img)
    return img.convert("RGB")  # P, RGBA, CMYK, YCbCr, LAB, HSV: alpha is dropped


@contextmanager
def opened(path: str | Path, max_pixels: int = MAX_PIXELS, data: bytes | None = None):
    """The file (or the bytes `data`, `path` then only naming them) as an open PIL image whose
    size is checked; whatever goes wrong reading it, here or in the caller's block, becomes a
    BadImage with the reason."""
    path = Path(path)
    if data is None and not path.is_file():
        raise BadImage(f"{path} does not exist or is not a file.", "missing")
    if (len(data) if data is not None else path.stat().st_size) == 0:
        raise BadImage(f"{path} is empty (0 bytes).", "empty")
    try:
        with warnings.catch_warnings():
            # PIL warns above its MAX_IMAGE_PIXELS and raises above twice that: both refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path if data is None else io.BytesIO(data)) as img:
                width, height = img.size  # read from the header, nothing decoded yet
                if width * height > max_pixels:
                    raise BadImage(f"{path} claims {width}x{height} pixels, more than the limit "
                                   f"of {max_pixels:,}; refused without decoding it.",
                                   "too-large")
                yield img
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"{path} claims more pixels than PIL's decompression-bomb limit; "
                       "refused without decoding it.", "too-large") from None
    except UnidentifiedImageError:
        raise BadImage(f"{path} is not an image file PIL can read.", "not-image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{path} is damaged or truncated ({exc}).", "damaged") from None


def decode_image(path: str | Path, max_pixels: int = MAX_PIXELS,
                 data: bytes | None = None) -> torch.Tensor:
    """uint8 tensor C x H x W (C is 1 or 3), upright as the camera meant it; from `data`
    (an upload's bytes, `path` its name) where given."""
    with opened(path, max_pixels, data) as img:
        img.load()  # a truncated file fails here
        array = np.array(_normalise_mode(ImageOps.exif_transpose(img)))
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
