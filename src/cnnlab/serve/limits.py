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

import torch

from ..data.images import BadImage, decode_image


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


# What an unusable upload answers, by the reason data/images.py gives.
STATUS = {"empty": 422, "damaged": 422, "not-image": 415, "too-large": 413}


def decode_upload(data: bytes, name: str, max_pixels: int) -> torch.Tensor:
    """uint8 C x H x W, decoded exactly as `cnnlab predict` decodes a file (upright, the same
    modes); a Refused says why not: 415 not an image, 413 more pixels than allowed (from the
    header alone), 422 empty, damaged or truncated."""
    try:
        return decode_image(name, max_pixels, data=data)
    except BadImage as exc:
        raise Refused(STATUS.get(exc.kind, 422), str(exc)) from None


def check_token(expected: str | None, authorization: str | None) -> None:
    """401 unless `Authorization: Bearer <expected>` (compared in constant time)."""
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise Refused(401, "this service needs the header 'Authorization: Bearer <token>' with "
                           "its token.", {"WWW-Authenticate": "Bearer"})
