"""What a request may send, checked before any work is spent on it.

A service on a network meets what `cnnlab predict` never does: bodies of gigabytes, a
20-kilobyte PNG that claims 400 million pixels (a decompression bomb: decoding it would take
over a gigabyte of memory), text posted as an image, uploads cut short, clients that send a
byte a second. Each is refused with its own status code and one sentence, from the least
work that tells: the Content-Length header, the bytes counted as they arrive, the image
header (PIL's Image.open reads only the header; pixels are decoded by load()).
"""
from __future__ import annotations

import asyncio
import hmac
import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# The same mode handling as `cnnlab predict` (grey stays grey, palettes and CMYK become RGB,
# 16-bit is scaled, not clipped), so an upload and a file give the same answer.
from ..data.images import _normalise_mode


class Refused(Exception):
    """A request the service will not answer: an HTTP status and one sentence."""

    def __init__(self, status: int, sentence: str, headers: dict | None = None):
        super().__init__(sentence)
        self.status, self.headers = status, headers or {}


async def read_body(request, max_bytes: int, seconds: float) -> bytes:
    """The whole body, refused as soon as it is known to be too large (413) or too slow to
    arrive (408): a slow client holds a connection, never the model."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Refused(413, f"the request body of {int(declared):,} bytes is over the limit of "
                           f"{max_bytes:,} bytes.")

    async def gather() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise Refused(413, f"the request body is over the limit of {max_bytes:,} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(gather(), seconds)
    except asyncio.TimeoutError:
        raise Refused(408, f"the request body did not arrive within {seconds:g} s.") from None


def decode_upload(data: bytes, name: str, max_pixels: int) -> torch.Tensor:
    """uint8 C x H x W, upright as the camera meant it; a Refused says why not: 415 not an
    image, 413 more pixels than allowed (from the header alone), 422 damaged or truncated."""
    if not data:
        raise Refused(422, f"{name} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            # PIL warns above its MAX_IMAGE_PIXELS and raises above twice that: both refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size  # from the header; nothing is decoded yet
                if width * height > max_pixels:
                    raise Refused(413, f"{name} claims {width}x{height} pixels, more than the "
                                       f"limit of {max_pixels:,}; refused without decoding it.")
                img.load()  # a truncated file fails here
                array = np.array(_normalise_mode(ImageOps.exif_transpose(img)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(413, f"{name} claims more pixels than PIL's decompression-bomb limit; "
                           "refused without decoding it.") from None
    except UnidentifiedImageError:
        raise Refused(415, f"{name} is not an image file PIL can read.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Refused(422, f"{name} is damaged or truncated ({exc}).") from None
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def check_token(expected: str | None, authorization: str | None) -> None:
    """401 unless `Authorization: Bearer <expected>` (compared in constant time)."""
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise Refused(401, "this service needs the header 'Authorization: Bearer <token>' with "
                           "its token.", {"WWW-Authenticate": "Bearer"})
