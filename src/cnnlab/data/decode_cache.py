"""The decoded-image cache: a folder's pixels at a model's size, so the next run skips decoding.

Where: $XDG_CACHE_HOME/cnnlab/decoded/<key>/ (~/.cache when unset), one entry per folder of
images and decoding (channels, size, resize, interpolation). Nothing is written beside the
user's data: that folder may be read-only or shared, and a file cnnlab did not create is
never touched.

What: pixels-<token>.npy, uint8 N x C x H x W uncompressed (read back through a memory map at
the disk's speed: 6,000 32x32 colour images are 18 MB), and index.json naming it, with each
file's path under the folder, size, modification time (ns) and row. A file whose size or time
differs from its entry is decoded again, and only it. Files that cannot be decoded are not
remembered: they are tried, and reported, on every run.

Written so that a crash leaves one whole entry: the pixels go to a new file, then index.json
is replaced atomically (atomic.py), then the pixels it named before are removed. An entry
that cannot be read (index not cnnlab's JSON, pixels missing or cut short) is rebuilt, with a
warning; a cache that cannot be written (read-only home, full disk) costs the next run its
decoding, never this run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..logs import LOGGER
from .transforms import Preprocess

FORMAT = 1
INDEX = "index.json"
PIXELS = re.compile(r"pixels-[0-9a-f-]+\.npy")
GATHER = 4096            # rows copied per step: the copy's buffer stays small at any set size
ORPHAN_SECONDS = 3600    # a pixels file no index names, left by a crash, is removed after this
FREE_SHARE = 0.5         # the cache never takes more than this share of the disk's free space


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnlab" / "decoded"


class Damaged(Exception):
    """An entry that cannot be used; the message says what is wrong with it."""


class DecodedCache:
    """The entry for one folder's files at one decoding: read_into, then write what is new."""

    def __init__(self, root: str, sizing: Preprocess):
        self.root, self.shape = root, (sizing.channels, *sizing.size)
        described = (f"{FORMAT}|{root}|{self.shape}|{sizing.resize}|{sizing.interpolation}")
        self.folder = cache_root() / hashlib.sha256(described.encode()).hexdigest()[:24]
        self.index: dict = {}
        self.damaged = False  # then every pixels file there but the new one goes
        self.stats: list[tuple[int, int] | None] = []

    @classmethod
    def for_files(cls, files: list[Path], sizing: Preprocess) -> "DecodedCache":
        """The entry of the folder that holds all of `files`."""
        parents = {os.path.dirname(os.path.abspath(f)) for f in files}
        return cls(os.path.commonpath(parents) if parents else "", sizing)

    def _key(self, file: Path) -> str:
        """The file's path under the folder ("/" ends its name already: nothing to cut)."""
        return os.path.abspath(file)[len(os.path.join(self.root, "")):]

    def read_into(self, files: list[Path], out: np.ndarray) -> dict[int, int]:
        """Fill out[i] for each file remembered unchanged; {i: row} of those filled. Every
        file is looked at (size, time) now, before any is decoded: a file changed while it
        is being decoded is then decoded again next time, never remembered stale."""
        self.stats = [_stat(f) for f in files]
        try:
            self.index = self._read_index()
            pixels = self._open_pixels() if self.index else None
        except Damaged as exc:
            LOGGER.warning("the decoded-image cache %s is damaged (%s); it is rebuilt.",
                           self.folder, exc)
            self.index, pixels, self.damaged = {}, None, True
        if pixels is None:
            return {}
        entries, found = self.index["files"], {}
        for position, (file, stat) in enumerate(zip(files, self.stats)):
            entry = entries.get(self._key(file))
            if entry is not None and stat is not None and (entry[0], entry[1]) == stat:
                found[position] = entry[2]
        _gather(out, list(found), pixels, list(found.values()))
        _touch(self.folder / INDEX)  # its time says when the entry was last used
        return found

    def _read_index(self) -> dict:
        path = self.folder / INDEX
        if not path.is_file():
            return {}
        try:
            index = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            raise Damaged(f"{INDEX} is not cnnlab's JSON") from None
        if not (isinstance(index, dict) and index.get("format") == FORMAT
                and index.get("shape") == list(self.shape) and isinstance(index.get("rows"), int)
                and isinstance(index.get("files"), dict)
                and PIXELS.fullmatch(str(index.get("pixels")))):
            raise Damaged(f"{INDEX} is not an index of this cache")
        rows = index["rows"]
        if not all(isinstance(e, list) and len(e) == 3 and all(type(v) is int for v in e)
                   and 0 <= e[2] < rows for e in index["files"].values()):
            raise Damaged(f"{INDEX} names rows that are not there")
        return index

    def _open_pixels(self) -> np.ndarray:
        path = self.folder / self.index["pixels"]
        try:
            pixels = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise Damaged(f"{path.name} is missing") from None
        except (OSError, ValueError) as exc:
            raise Damaged(f"{path.name} cannot be read: {exc}") from None
        if pixels.dtype != np.uint8 or pixels.shape != (self.index["rows"], *self.shape):
            raise Damaged(f"{path.name} holds {pixels.dtype} {pixels.shape}, not what "
                          f"{INDEX} says")
        return pixels

    def write(self, files: list[Path], kept: list[int], out: np.ndarray) -> None:
        """Remember out[i] for every i in `kept`, beside what the entry holds for files
        not among `files` (another split or listing of the same folder)."""
        ours = {self._key(files[i]): i for i in kept if self.stats[i] is not None}
        mine = {self._key(f) for f in files}
        others = {key: entry for key, entry in self.index.get("files", {}).items()
                  if key not in mine}
        rows = len(ours) + len(others)
        if not self._room_for(rows):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = self._write_pixels(out, list(ours.values()), others, rows)
            entries = {key: [*self.stats[i], row] for row, (key, i) in enumerate(ours.items())}
            entries |= {key: [e[0], e[1], len(ours) + n] for n, (key, e) in enumerate(others.items())}
            atomic_write_text(self.folder / INDEX, json.dumps(
                {"format": FORMAT, "root": self.root, "shape": list(self.shape), "rows": rows,
                 "pixels": name, "files": entries}, separators=(",", ":")))
        except OSError as exc:
            LOGGER.warning("could not save the decoded-image cache in %s (%s); the next run "
                           "decodes these images again.", self.folder, exc)
            return
        self._remove_unused(name)

    def _room_for(self, rows: int) -> bool:
        needed = rows * int(np.prod(self.shape))
        try:
            free = shutil.disk_usage(_existing(self.folder)).free
        except OSError:
            return False
        if needed > FREE_SHARE * free:
            LOGGER.info("decoded images not cached: %.1f GB would take more than half of the "
                        "%.1f GB free in %s.", needed / 1e9, free / 1e9, self.folder)
            return False
        return True

    def _write_pixels(self, out, positions, others, rows) -> str:
        """A new pixels file: this call's rows, then the others' rows copied from the old one."""
        name = f"pixels-{os.getpid()}-{secrets.token_hex(6)}.npy"
        path = self.folder / name
        try:
            target = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                               shape=(rows, *self.shape))
            _gather(target, range(len(positions)), out, positions)
            if others:
                old = self._open_pixels()
                _gather(target, range(len(positions), rows), old, [e[2] for e in others.values()])
            target.flush()
            del target
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return name

    def _remove_unused(self, name: str) -> None:
        """The pixels file the index named before (all of them, when the entry was damaged),
        and those a crash left long ago."""
        for path in self.folder.glob("pixels-*.npy"):
            if path.name == name:
                continue
            try:
                if (self.damaged or path.name == self.index.get("pixels")
                        or time.time() - path.stat().st_mtime > ORPHAN_SECONDS):
                    path.unlink()
            except OSError:
                pass  # gone already (another run), or not ours to remove


def _gather(target: np.ndarray, to, source: np.ndarray, rows) -> None:
    """target[to[k]] = source[rows[k]], GATHER rows at a time; one straight copy when both
    run in order."""
    to, rows = np.asarray(to, dtype=np.int64), np.asarray(rows, dtype=np.int64)
    if not len(to):
        return
    if _consecutive(to) and _consecutive(rows):
        target[to[0]:to[0] + len(to)] = source[rows[0]:rows[0] + len(rows)]
        return
    for start in range(0, len(to), GATHER):
        target[to[start:start + GATHER]] = source[rows[start:start + GATHER]]


def _consecutive(values: np.ndarray) -> bool:
    return bool(values[-1] - values[0] == len(values) - 1 and (np.diff(values) == 1).all())


def _stat(file: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(file)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
