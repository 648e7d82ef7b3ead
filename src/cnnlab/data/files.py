"""The user's own images: a folder with one subfolder per class, or a CSV of path,label rows.

The CSV form is the lectures' custom Dataset (003: __init__ reads the annotations, __getitem__
opens one image). Files are only listed here; decoding, and skipping the bad ones, happens
in decode.py so that one report covers both forms.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError


@dataclass
class LabelledFiles:
    files: list[Path]
    labels: torch.Tensor  # int64, one per file
    classes: list[str]
    problems: list[tuple[str, str]]  # (entry, reason) for rows that name no usable file


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def folder(path: str | Path) -> LabelledFiles:
    """PATH/<class>/**/<image>: class names are the subfolder names, sorted."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p))
    if not classes:
        raise UserError(f"folder {root} has no class subfolders; put each class's images in "
                        f"{root}/<class name>/.")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.is_file() and _visible(p))
        if not found:  # as torchvision's ImageFolder: a class with nothing to learn from
            raise UserError(f"class folder {root / name} has no files; add its images or "
                            "remove the folder.")
        files += found
        labels += [label] * len(found)
    if not files:
        raise UserError(f"folder {root} has class subfolders but no files in them.")
    return LabelledFiles(files, torch.tensor(labels, dtype=torch.long), classes, [])


def _class_order(names: set[str]) -> list[str]:
    """Numeric labels in numeric order (2 before 10), others alphabetically."""
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


def csv_listing(path: str | Path) -> LabelledFiles:
    """Rows of path,label (a header row is allowed); paths relative to the CSV's folder."""
    table = Path(path)
    if not table.is_file():
        raise UserError(f"CSV file {table} does not exist.")
    try:
        rows = list(csv.reader(table.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{table} is not a readable CSV file ({exc}).") from None
    header = bool(rows) and [c.strip().lower() for c in rows[0][:2]] in (
        ["path", "label"], ["file", "label"], ["filename", "label"], ["image", "label"])
    entries, problems, seen = [], [], {}
    for number, row in enumerate(rows[1:] if header else rows, start=2 if header else 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            problems.append((f"{table} row {number}", "needs a path and a label"))
            continue
        file, label = table.parent / row[0].strip(), row[1].strip()
        if file in seen:  # one image cannot teach two answers: the first row counts
            problems.append((f"{table} row {number}", f"lists {row[0].strip()} again (row "
                             f"{seen[file][0]} gave it label {seen[file][1]})"))
            continue
        seen[file] = (number, label)
        entries.append((file, label))
    if not entries:
        raise UserError(f"CSV file {table} has no path,label rows.")
    classes = _class_order({label for _, label in entries})
    index = {name: i for i, name in enumerate(classes)}
    return LabelledFiles([f for f, _ in entries],
                         torch.tensor([index[label] for _, label in entries]), classes, problems)
