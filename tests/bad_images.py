"""Writers of every awkward image file a real folder holds, shared by the data tests."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient(height=12, width=16) -> np.ndarray:
    """A colour picture whose orientation is unambiguous: red grows rightwards, green downwards."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1),
                     np.full_like(x, 60)], axis=-1).astype(np.uint8)


def write_bad_files(folder: Path) -> dict[str, str]:
    """One file of each bad kind; returns name -> the words its skip reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("a shopping list, not a picture")
    Image.fromarray(gradient(64, 64)).save(folder / "whole.jpg", quality=95)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "whole.jpg").unlink()
    write_bomb(folder / "bomb.png")
    return {"empty.png": "empty", "notes.jpg": "not an image", "truncated.jpg": "truncated",
            "bomb.png": "refused without decoding"}


def write_bomb(path: Path, width=100_000, height=100_000) -> None:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    # IHDR data starts at byte 16: width, height (big-endian), then 5 bytes of settings.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def write_odd_modes(folder: Path) -> dict[str, tuple[int, int]]:
    """Good files in every odd mode; returns name -> (channels, expected height)."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = gradient()
    Image.fromarray(picture).convert("L").save(folder / "grey.png")
    Image.fromarray(picture).convert("P", palette=Image.ADAPTIVE).save(folder / "palette.gif")
    Image.fromarray(np.dstack([picture, np.full(picture.shape[:2], 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(picture).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((picture[..., 0].astype(np.uint16) * 257)).save(folder / "deep16.png")
    Image.fromarray(picture).save(folder / "really-a-png.jpg", format="PNG")  # wrong extension
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(picture).save(folder / "rotated.jpg", exif=exif, quality=95)
    return {"grey.png": (1, 12), "palette.gif": (3, 12), "rgba.png": (3, 12), "cmyk.jpg": (3, 12),
            "deep16.png": (1, 12), "really-a-png.jpg": (3, 12), "rotated.jpg": (3, 16)}
