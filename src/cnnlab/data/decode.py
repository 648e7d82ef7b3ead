"""Decoding the user's image files: in parallel workers, bad files skipped and reported.

One pass decodes every file to the model's channels and size (uint8), collecting the files
that cannot be used with their reasons. Small sets stay in memory from that pass; sets too
big for memory are decoded again each epoch by `FileDataset` in DataLoader workers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .images import BadImage, decode_image

# What to do with a file that cannot be used: leave it out (and report it) or stop.
BAD_FILES = ("skip", "fail")


def default_workers() -> int:
    """Leave one core for the training process itself; more than 8 rarely helps decoding."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


class FileDataset(Dataset):
    """(image, label, index) per file; a bad file gives (None, label, index, reason)."""

    def __init__(self, files: list[Path], labels: torch.Tensor,
                 transform: Callable[[torch.Tensor], torch.Tensor]):
        self.files, self.labels, self.transform = files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return self.transform(decode_image(self.files[index])), self.labels[index], index, None
        except BadImage as exc:
            return None, self.labels[index], index, str(exc)


def _as_list(batch):
    return batch


@dataclass
class Decoded:
    images: torch.Tensor | None      # uint8 N x C x H x W, when kept in memory
    labels: torch.Tensor
    files: list[Path]                # the good files, in the order of `labels`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def decode_files(files: list[Path], labels: torch.Tensor, fit_size, *, keep: bool,
                 workers: int, bad_files: str = "skip") -> Decoded:
    """Decode every file once with `fit_size` (uint8 -> uint8 at the model's size)."""
    loader = DataLoader(FileDataset(files, labels, fit_size), batch_size=32,
                        num_workers=workers, collate_fn=_as_list)
    images, good, skipped = [], [], []
    for batch in loader:
        for image, _, index, reason in batch:
            if reason is not None:
                if bad_files == "fail":
                    raise UserError(f"{reason} (use --bad-files skip to leave such files out)")
                skipped.append((str(files[index]), reason))
                continue
            good.append(index)
            if keep:
                images.append(image)
    if not good:
        raise UserError(f"none of the {len(files)} files could be used as images; "
                        f"the first problem: {skipped[0][1]}")
    return Decoded(torch.stack(images) if keep else None, labels[good],
                   [files[i] for i in good], skipped)
