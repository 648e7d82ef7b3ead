"""Which images a run trained, validated and was tested on, kept in RUN/split.json, so that
`cnnlab evaluate` measures exactly the run's own test images even after the folder changed.

A user's folder or CSV is recorded file by file (with its label): files added since training
are left out of evaluation rather than slipping training images into the test split, and
files gone since are named by their count. A built-in set is recorded by a digest of each
split's pixels and labels, which says whether today's split is still the run's.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..data.catalog import DataSplits, FileSplit
from ..errors import UserError
from ..logs import LOGGER

SPLIT = "split.json"
PARTS = ("train", "val", "test")


def record_split(run_dir: Path, splits: DataSplits) -> None:
    atomic_write_text(Path(run_dir) / SPLIT, json.dumps(
        {name: _describe(getattr(splits, name)) for name in PARTS}) + "\n")


def _describe(part) -> dict:
    if isinstance(part, FileSplit):
        labels = part.labels
        return {"files": [str(f) for f in part.files],
                "labels": labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)}
    return {"images": len(part.labels), "sha256": _digest(part)}


def _digest(part) -> str:
    """sha256 of a split's pixels, labels and, where there are, masks and per-image targets
    (boxes: a list of dicts of tensors; images of several sizes: a list of tensors)."""
    digest = hashlib.sha256()
    for value in (part.images, part.labels, getattr(part, "masks", None),
                  getattr(part, "targets", None)):
        _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(np.ascontiguousarray(value.cpu().numpy()).tobytes())
    elif isinstance(value, dict):
        for key in sorted(value):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            _feed(digest, item)
    elif value is not None:
        digest.update(repr(value).encode())


def recorded_part(run_dir: Path, splits: DataSplits, name: str) -> tuple[object, dict]:
    """Split `name` as the run recorded it (today's where nothing was recorded: a run older
    than this file) and what changed since, for the report."""
    path = Path(run_dir) / SPLIT
    today = getattr(splits, name)
    if not path.is_file():
        return today, {"split_recorded": False}
    recorded = json.loads(path.read_text())
    if "files" not in recorded[name]:
        same = recorded[name]["sha256"] == _digest(today)
        if not same:
            LOGGER.warning("the %s split of %s is not the one this run was recorded with (the "
                           "data set changed); evaluating on today's.", name, splits.name)
        return today, {"split_recorded": True, "split_unchanged": same}
    return _recorded_files(recorded, splits, name)


def _recorded_files(recorded: dict, splits: DataSplits, name: str) -> tuple[FileSplit, dict]:
    files, labels = recorded[name]["files"], recorded[name]["labels"]
    there = [i for i, file in enumerate(files) if Path(file).is_file()]
    if not there:
        raise UserError(f"every one of the {len(files)} files of this run's {name} split is gone "
                        f"(the first was {files[0]}).")
    known = {file for part in PARTS for file in recorded[part]["files"]}
    new = sorted(str(f) for part in PARTS for f in getattr(splits, part).files
                 if str(f) not in known)
    if len(there) < len(files):
        LOGGER.warning("%d of the %d files of this run's %s split are gone; evaluating on the "
                       "other %d.", len(files) - len(there), len(files), name, len(there))
    if new:
        LOGGER.warning("%d file(s) were added to %s since training (%s%s); they are in none of "
                       "its splits, so they are left out.", len(new), splits.name, new[0],
                       ", ..." if len(new) > 1 else "")
    part = FileSplit([Path(files[i]) for i in there], torch.tensor([labels[i] for i in there],
                                                                    dtype=torch.long))
    return part, {"split_recorded": True, "missing_files": len(files) - len(there),
                  "new_files": len(new)}
