"""`cnnlab datasets stats NAME`: per-channel mean and std of a training split, cached.

Computed at the images' own size and channels (files: each decoded once), and cached in
DATA_DIR/.cnnlab-stats.json under a fingerprint of the split, so a folder that changes is
measured again.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..errors import UserError
from ..logs import LOGGER
from .catalog import FileSplit, load_dataset
from .images import BadImage, decode_image
from .transforms import channel_stats

CACHE = ".cnnlab-stats.json"


def _fingerprint(split) -> str:
    if isinstance(split, FileSplit):
        sizes = [(p.stat().st_size, p.stat().st_mtime_ns) for p in split.files if p.exists()]
        return f"files:{len(split.files)}:{sum(s for s, _ in sizes)}:{max((m for _, m in sizes), default=0)}"
    return f"tensor:{tuple(split.images.shape)}:{int(split.images[:64].sum())}"


def _file_stats(split: FileSplit) -> tuple[tuple, tuple, int]:
    """Running sums over every readable file (sizes differ, so no single tensor)."""
    total = squares = None
    count, used = 0, 0
    for path in split.files:
        try:
            image = decode_image(path).to(torch.float64) / 255
        except BadImage:
            continue
        flat = image.reshape(image.shape[0], -1)
        if total is not None and flat.shape[0] != total.shape[0]:
            flat = flat.mean(dim=0, keepdim=True).expand(total.shape[0], -1)  # grey among colour
        total = flat.sum(1) if total is None else total + flat.sum(1)
        squares = (flat * flat).sum(1) if squares is None else squares + (flat * flat).sum(1)
        count, used = count + flat.shape[1], used + 1
    if total is None:
        raise UserError(f"none of the {len(split.files)} training images could be decoded, "
                        "so there are no statistics to compute.")
    mean = total / count
    std = ((squares - count * mean * mean) / max(count - 1, 1)).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist()), used


def _read_cache(path: Path) -> dict:
    """The cache, or an empty one where it is missing or damaged (it is rebuilt, saying so)."""
    if not path.is_file():
        return {}
    try:
        cache = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        cache = None
    if not isinstance(cache, dict):
        LOGGER.warning("%s is damaged (not cnnlab's JSON); it is rebuilt.", path)
        return {}
    return cache


def dataset_stats(name: str, data_dir: str = "data", download: bool = False) -> dict:
    """{'dataset', 'mean', 'std', 'images', 'cached'} for the training split of `name`."""
    train = load_dataset(name, data_dir, download).train
    key, fingerprint = name, _fingerprint(train)
    cache_path = Path(data_dir) / CACHE
    cache = _read_cache(cache_path)
    entry = cache.get(key)
    if entry and entry.get("fingerprint") == fingerprint:
        return {"dataset": name, **{k: entry[k] for k in ("mean", "std", "images")}, "cached": True}
    if isinstance(train, FileSplit):
        mean, std, used = _file_stats(train)
    else:
        (mean, std), used = channel_stats(train.images), len(train)
    cache[key] = {"fingerprint": fingerprint, "mean": mean, "std": std, "images": used}
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache_path, json.dumps(cache, indent=1))
    return {"dataset": name, "mean": list(mean), "std": list(std), "images": used, "cached": False}
