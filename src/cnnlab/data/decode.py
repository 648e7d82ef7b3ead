"""Decoding the user's image files straight into one uint8 array, bad files skipped and reported.

One pass decodes every file to the model's channels and size, collecting the files that
cannot be used with their reasons. Small sets stay in memory from that pass; sets too big for
memory are decoded again each epoch by pipeline.StreamDataset in DataLoader workers.

Why not a DataLoader here: each image it hands back crosses from a worker process to this one
through a shared-memory file descriptor, which costs more than decoding a small PNG (6,000
32x32 PNGs took 7.7 s through one worker, 1.0 s with PIL in one process). Instead every image
is written into its row of an array allocated once. Small images are decoded in this thread,
since for them Python's own overhead is the cost and threads would only contend for the GIL;
large ones by a pool of threads, since PIL decodes and torch resizes without the GIL, so
threads use every core without sending a single image between processes.

The pixels of a set kept in memory are remembered (decode_cache.py): a second run on the same
folder reads them back instead of decoding, and only files changed since are decoded again.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..logs import LOGGER
from .images import MAX_PIXELS, BadImage, decode_image
from .transforms import Preprocess

# What to do with a file that cannot be used: leave it out (and report it) or stop.
BAD_FILES = ("skip", "fail")
# Images decoded one after another before choosing threads or not by how long they took.
PROBE = 32
# Above this many seconds an image (the fastest of the probe), the decoder's own work (GIL
# released) is most of it and threads pay; below, Python's per-image overhead is, and a
# second thread only contends for the GIL. Measured on a 2-core EPYC: 0.07 ms for a 32x32
# PNG, 1.4 ms for a 500x375 JPEG resized to 224x224.
THREADED_ABOVE = 0.0005
CHUNK = 64             # images a thread decodes per task: few tasks, little scheduling
PROGRESS_FROM = 2.0
ORIENTATION = 0x0112   # the EXIF tag of a photo stored sideways (ImageOps.exif_transpose)    # a bar when decoding is expected to take longer than this (seconds)


def default_workers() -> int:
    """Leave one core for the training process itself; more than 8 rarely helps decoding."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


@dataclass
class Decoded:
    images: torch.Tensor | None      # uint8 N x C x H x W, when kept in memory
    labels: torch.Tensor
    files: list[Path]                # the good files, in the order of `labels`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    from_cache: int = 0              # good images read back from the decoded-image cache
    decoded: int = 0                 # files decoded in this call (good or not)


def decode_one(path: Path, sizing: Preprocess, row: np.ndarray | None) -> None:
    """Decode `path` into `row` (C x H x W uint8, or only check it when None) exactly as
    sizing.fit_size(decode_image(path)) would; BadImage with the reason otherwise.

    The common case (an 8-bit grey or RGB image, upright) is decoded here with as little per
    image as possible: the file read whole in one call (PIL reading a path makes many small
    reads), no copies. Everything else (odd modes, a turn to make, a file that fails) goes
    through decode_image itself, so the pixels and every reason for refusing a file are its."""
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    array = _plain_pixels(data) if data else None
    if array is None:  # decode_image says why it cannot, or decodes what is not plain
        image = sizing.fit_size(decode_image(path, data=data))
        if row is not None:
            row[...] = image.numpy()
        return
    height, width = sizing.size
    if (sizing.resize is None and array.shape[:2] == (height, width)
            and (array.ndim == 2) == (sizing.channels == 1)):
        if row is not None:  # already the model's size and channels: only the bytes move
            row[...] = array if array.ndim == 2 else array.transpose(2, 0, 1)
        return
    # PIL's buffer is read-only, and torch will not wrap one: a copy for the resize
    tensor = torch.from_numpy(array.copy())
    image = sizing.fit_size(tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1))
    if row is not None:
        row[...] = image.numpy()


def _plain_pixels(data: bytes) -> np.ndarray | None:
    """H x W (grey) or H x W x 3 (RGB) uint8 for an 8-bit image with nothing to turn;
    None for anything else (decode_image's to handle), including every failure."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS or img.mode not in ("L", "RGB"):
                return None
            img.load()
            if img.getexif().get(ORIENTATION, 1) != 1:
                return None
            return np.asarray(img)
    except Exception:  # noqa: BLE001 - decode_image decodes it again and says what it was
        return None


def _decode_chunk(files, positions, sizing, out) -> list[tuple[int, str]]:
    """(position, reason) of each file in the chunk that could not be used."""
    bad = []
    for position in positions:
        try:
            decode_one(files[position], sizing, None if out is None else out[position])
        except BadImage as exc:
            bad.append((position, str(exc)))
    return bad


def _progress(total: int, done: int, wanted: bool):
    """A bar on stderr when `wanted` (decoding will take a while), while the cnnlab logger
    speaks (not --quiet) and both stdout and stderr are terminals, as the training bar."""
    from tqdm.auto import tqdm
    show = (wanted and LOGGER.isEnabledFor(logging.INFO) and sys.stdout.isatty()
            and sys.stderr.isatty())
    return tqdm(total=total, initial=done, unit="image", desc="decoding", file=sys.stderr,
                leave=False, disable=not show)


def decode_positions(files, positions: list[int], sizing: Preprocess, out, workers: int,
                     on_bad) -> None:
    """Decode files[p] into out[p] for every p in `positions`, calling on_bad(p, reason) for
    each unusable file, in order. The first few are timed to choose threads or not."""
    probe, rest = positions[:PROBE], positions[PROBE:]
    fastest = float("inf")
    for position in probe:  # the fastest of a few: robust to the machine's other work
        started = time.perf_counter()
        for bad_position, reason in _decode_chunk(files, [position], sizing, out):
            on_bad(bad_position, reason)
        fastest = min(fastest, time.perf_counter() - started)
    threads = workers + 1 if workers > 0 and fastest > THREADED_ABOVE else 1
    chunks = [rest[i:i + CHUNK] for i in range(0, len(rest), CHUNK)]
    show = fastest * len(rest) / threads > PROGRESS_FROM
    with _progress(len(positions), len(probe), show) as bar, ThreadPoolExecutor(threads) as pool:
        results = (pool.map(lambda chunk: _decode_chunk(files, chunk, sizing, out), chunks)
                   if threads > 1 else (_decode_chunk(files, chunk, sizing, out)
                                        for chunk in chunks))
        try:
            for chunk, bad in zip(chunks, results):
                for position, reason in bad:
                    on_bad(position, reason)
                bar.update(len(chunk))
        except BaseException:  # --bad-files fail, Ctrl-C: the chunks not begun are dropped
            pool.shutdown(cancel_futures=True)
            raise


def decode_files(files: list[Path], labels: torch.Tensor, sizing: Preprocess, *, keep: bool,
                 workers: int, bad_files: str = "skip", cache: bool = True) -> Decoded:
    """Decode every file once at `sizing`'s channels and size (uint8), the kept ones into one
    N x C x H x W tensor; with `cache`, kept pixels are read from and saved to the
    decoded-image cache."""
    from .decode_cache import DecodedCache
    started = time.perf_counter()
    shape = (sizing.channels, *sizing.size)
    out = torch.empty((len(files), *shape), dtype=torch.uint8) if keep else None
    store = DecodedCache.for_files(files, sizing) if keep and cache else None
    known = store.read_into(files, out.numpy()) if store is not None else {}
    todo = [i for i in range(len(files)) if i not in known]
    skipped: dict[int, str] = {}

    def on_bad(position: int, reason: str) -> None:
        if bad_files == "fail":
            raise UserError(f"{reason} (use --bad-files skip to leave such files out)")
        skipped[position] = reason

    decode_positions(files, todo, sizing, None if out is None else out.numpy(), workers, on_bad)
    good = [i for i in range(len(files)) if i not in skipped]
    if not good:
        first = skipped[min(skipped)]
        raise UserError(f"none of the {len(files)} files could be used as images; "
                        f"the first problem: {first}")
    if store is not None and len(todo) > len(skipped):  # something new to remember
        store.write(files, good, out.numpy())
    _report(len(known), len(todo), len(skipped), time.perf_counter() - started)
    images = None if out is None else (out if len(good) == len(files) else out[good])
    return Decoded(images, labels[good], [files[i] for i in good],
                   [(str(files[i]), skipped[i]) for i in sorted(skipped)], len(known), len(todo))


def _report(cached: int, decoded: int, bad: int, seconds: float) -> None:
    LOGGER.info(f"decoded images: {cached:,} from the cache, {decoded:,} decoded"
                + (f" ({bad:,} of them unusable)" if bad else "") + f" in {seconds:.1f} s")
