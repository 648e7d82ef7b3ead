"""`masks:PATH`: the user's own segmentation set, laid out the way PASCAL VOC ships one.

    PATH/classes.txt     one class name per line: line 1 names class 0, line 2 class 1, ...
    PATH/images/a.jpg    any image file decode_image reads
    PATH/masks/a.png     the same name with .png: each pixel's class index (a grey 'L' PNG,
                         or a palette 'P' PNG as VOC's SegmentationClass, whose pixel values
                         are the indices and whose colours are only for viewing); 255: ignore

Every pair is decoded here, up front: segmentation trains in memory, and a pair that cannot
be used (an unreadable image, an image without a mask or a mask without an image, a mask of
another size than its image, a class value classes.txt does not name) is left out and
reported with its reason, for RUN/skipped.txt.

The in-memory Split holds one tensor, so the pairs are brought to one size: the most common
(H, W) among the usable pairs (ties: the first in file order). A pair of another size is
resized to it, the image bilinearly (antialiased), the mask by nearest neighbour, through
the same Preprocess geometry the pipeline uses later for the model's input size. Images are
1-channel when every one is grey, otherwise 3 (grey ones repeated).

`masked_images` does that decoding for any list of (image, mask) pairs, so the public sets
(segmentation_sets.py) share it; they pass a fixed working size instead, and a mapping of
the masks' stored values to class indices where their files do not hold indices (trimaps).

Each pair also gets one label, only so that the train / validation / test split can be
stratified as for the other sets: its most frequent class other than class 0 (by VOC's
convention the background) and 255, or 0 when it shows nothing else.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .decode import default_workers
from .images import BadImage, decode_image, opened
from .sources import LabelledImages
from .transforms import Preprocess

IGNORE = 255  # as tasks.segment.IGNORE; not imported, so loading data needs no task module
CLASSES_FILE = "classes.txt"
MASK_SUFFIX = ".png"
# Fewer usable pairs than this cannot give a train, a validation and a test split.
MIN_PAIRS = 3


@dataclass
class MaskedImages(LabelledImages):
    """Images (uint8 N x C x H x W, one size) with their class-index masks."""
    class_masks: torch.Tensor            # uint8 N x H x W, 255: ignore
    mask_classes: list[str]              # what the masks' values name (classes.txt)
    problems: list[tuple[str, str]]      # (file, reason) for the pairs left out


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p))


def read_classes(root: Path) -> list[str]:
    path = root / CLASSES_FILE
    if not path.is_file():
        raise UserError(f"{root} has no {CLASSES_FILE}; write one there with one class name per "
                        "line, the first line naming class 0 (e.g. background), the next class 1, "
                        "and so on.")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 text file ({exc}).") from None
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise UserError(f"{path} is empty; write one class name per line, the first line "
                        "naming class 0.")
    if "" in lines:
        raise UserError(f"line {lines.index('') + 1} of {path} is empty; every line names the "
                        "class whose index is its line number minus one.")
    if len(lines) > IGNORE:
        raise UserError(f"{path} names {len(lines)} classes; masks hold at most {IGNORE} "
                        f"(0-{IGNORE - 1}, {IGNORE} meaning ignore).")
    return lines


def read_mask(path: Path, classes: int, named_by: str = CLASSES_FILE,
              values: dict[int, int] | None = None) -> np.ndarray:
    """uint8 H x W class indices, or BadImage with the reason. `values` maps what the file
    stores to class indices (a value it does not name is a reason to leave the pair out);
    `named_by` says what names the classes, for that reason's sentence."""
    with opened(path) as img:
        if img.mode in ("RGB", "RGBA"):
            raise BadImage(f"{path} is an RGB mask; masks hold class indices (a grey or palette "
                           "PNG).")
        if img.mode not in ("1", "L", "P") and not img.mode.startswith("I"):
            raise BadImage(f"{path} is a {img.mode} mask; masks hold class indices (a grey or "
                           "palette PNG).")
        array = np.asarray(img)  # a palette PNG's values are its indices, not colours
    stored = array.astype(np.int64)
    if values is not None:
        stored = _mapped(path, stored, values)
    wrong = np.unique(stored[(stored >= classes) & (stored != IGNORE)])
    if len(wrong):
        raise BadImage(f"{path} holds class value(s) {_shown(wrong)}, but {named_by} names only "
                       f"{classes} classes (0-{classes - 1}; {IGNORE} means ignore).")
    return stored.astype(np.uint8)


def _shown(numbers) -> str:
    return ", ".join(str(v) for v in numbers[:5]) + (", ..." if len(numbers) > 5 else "")


def _mapped(path: Path, stored: np.ndarray, values: dict[int, int]) -> np.ndarray:
    """The stored values through `values`; one it does not name is refused, not guessed."""
    found = np.unique(stored)
    unknown = [int(v) for v in found if int(v) not in values]
    if unknown:
        raise BadImage(f"{path} holds value(s) {_shown(unknown)}; this set's masks hold only "
                       f"{_shown(sorted(values))}.")
    table = np.zeros(int(found.max(initial=0)) + 1, dtype=np.int64)
    for value in found:
        table[value] = values[int(value)]
    return table[stored]


def _pair(image_path: Path, mask_path: Path, read, size: tuple[int, int] | None):
    """(image, mask) tensors, at `size` if one is given, or (None, reason)."""
    try:
        image = decode_image(image_path)
        mask = torch.from_numpy(read(mask_path))
    except BadImage as exc:
        return None, str(exc)
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        return None, (f"its mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} pixels, the image "
                      f"{image.shape[-1]}x{image.shape[-2]}; a mask has its image's size.")
    if size is None:
        return image, mask
    # Resized here, in the decoding thread, so that only working-size pairs are ever held.
    sizing = _sizing(image.shape[0], size)
    return sizing.fit_size(image), sizing.fit_mask_size(mask)


def _sizing(channels: int, size: tuple[int, int]) -> Preprocess:
    """Straight to `size` (no crop), as the pipeline resizes for the model's input."""
    return Preprocess(channels, tuple(size), (0.0,) * channels, (1.0,) * channels)


def _split_label(mask: torch.Tensor, classes: int) -> int:
    counts = torch.bincount(mask.flatten().long(), minlength=IGNORE + 1)[:classes]
    counts[0] = 0
    return int(counts.argmax()) if counts.any() else 0


def mask_folder(path: str | Path) -> MaskedImages:
    """PATH/images, PATH/masks and PATH/classes.txt -> every usable pair, in memory."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    classes = read_classes(root)
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise UserError(f"{root} has no {sub}/ folder; put the images in {root}/images/ and "
                            f"their masks, PNGs of the same names, in {root}/masks/.")
    problems: list[tuple[str, str]] = []
    masks: dict[Path, Path] = {}  # name without suffix, relative to masks/ -> mask file
    for file in _files(root / "masks"):
        if file.suffix.lower() != MASK_SUFFIX:
            problems.append((str(file), "not a PNG; masks are PNG files of class indices (JPEG "
                                        "would blur them)."))
        else:
            masks[file.relative_to(root / "masks").with_suffix("")] = file
    pairs, paired = [], set()
    for file in _files(root / "images"):
        key = file.relative_to(root / "images").with_suffix("")
        if key not in masks:
            problems.append((str(file), f"no mask for this image; expected "
                                        f"{(root / 'masks' / key).with_suffix(MASK_SUFFIX)}."))
        elif key in paired:
            problems.append((str(file), f"another image of the same name already pairs with "
                                        f"{masks[key]}."))
        else:
            paired.add(key)
            pairs.append((file, masks[key]))
    problems += [(str(file), "no image of the same name in images/ for this mask.")
                 for key, file in masks.items() if key not in paired]

    return masked_images(pairs, classes, problems, source=str(root))


def masked_images(pairs: list[tuple[Path, Path]], classes: list[str],
                  problems: list[tuple[str, str]], *, source: str,
                  size: tuple[int, int] | None = None, values: dict[int, int] | None = None,
                  named_by: str = CLASSES_FILE, least: int = MIN_PAIRS,
                  needs: str = "a train, a validation and a test split need") -> MaskedImages:
    """Every usable (image, mask) pair decoded, at `size` (H, W) or else at the pairs' most
    common size. A pair that cannot be used joins `problems` (those found while listing the
    set) with its reason; fewer than `least` usable pairs is an error: `source` has too few,
    `needs` at least that many. `values` and `named_by` go to read_mask."""
    problems = list(problems)
    read = lambda path: read_mask(path, len(classes), named_by, values)  # noqa: E731
    with ThreadPoolExecutor(max(1, default_workers())) as pool:  # PIL decodes without the GIL
        decoded = list(pool.map(lambda pair: _pair(*pair, read, size), pairs))
    good = []
    for (image_path, _), (image, mask) in zip(pairs, decoded):
        if image is None:
            problems.append((str(image_path), mask))
        else:
            good.append((image, mask))
    if len(good) < least:
        first = f"; the first problem: {problems[0][0]}: {problems[0][1]}" if problems else ""
        raise UserError(f"{source} has {len(good)} usable image and mask pair(s); {needs} at "
                        f"least {least}{first}")

    channels = 3 if any(image.shape[0] == 3 for image, _ in good) else 1
    if size is None:
        size = Counter(tuple(image.shape[-2:]) for image, _ in good).most_common(1)[0][0]
    sizing = _sizing(channels, size)
    images = torch.stack([sizing.fit_size(image) for image, _ in good]).contiguous()
    class_masks = torch.stack([sizing.fit_mask_size(mask) for _, mask in good]).contiguous()
    labels = torch.tensor([_split_label(mask, len(classes)) for mask in class_masks])
    return MaskedImages(images, labels, list(classes), class_masks, list(classes), problems)
