"""Decoding image files with their boxes into one in-memory BoxedImages (boxes.py).

Shared by coco:PATH and the public detection sets. Each image comes with a `read` function
that turns the decoded image into its target at the image's own size, dropping the objects
it cannot use, each with its reason; an image that cannot be used at all (unreadable, missing
its annotation file, of another size than its annotations say) raises BadImage and is left
out with its reason. Decoding runs in threads (PIL and pycocotools decode without the GIL or
quickly with it) and resizes in the same thread, so only working-size images are ever held.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError
from .boxes import BoxedImages, Target, fit, split_labels
from .decode import default_workers
from .images import BadImage, decode_image

# read(image uint8 C x H x W) -> (target at that size, [(file, reason)] for objects left out)
Reader = Callable[[torch.Tensor], tuple[Target, list[tuple[str, str]]]]


class ImageLeftOut(BadImage):
    """A readable image left out because of its annotations: `dropped` holds the objects'
    own reasons, reported before the image's."""

    def __init__(self, reason: str, dropped: list[tuple[str, str]]):
        super().__init__(reason)
        self.dropped = dropped


def _one(path: Path, read: Reader, size: tuple[int, int] | None, lost: str = ""):
    try:
        image = decode_image(path)
        target, dropped = read(image)
    except ImageLeftOut as exc:  # its annotations' reasons already name them
        return None, None, [*exc.dropped, (str(path), str(exc))]
    except BadImage as exc:
        return None, None, [(str(path), f"{exc}{lost}")]
    if size is not None:
        image, target = fit(image, target, size)
    return image, target, dropped


def boxed_images(items: list[tuple], classes: list[str],
                 problems: list[tuple[str, str]], *, source: str,
                 size: tuple[int, int] | None = None, least: int = 3,
                 needs: str = "a train, a validation and a test split need") -> BoxedImages:
    """Every usable image with its target, at `size` (H, W), or else at the most common size
    of the usable images (ties: the first in order); colour when any image is colour (grey
    ones repeated). An item is (image file, reader) or (image file, reader, lost): `lost` is
    added to the reason when the image cannot be used (what goes with it, e.g. the ids of its
    annotations). Fewer than `least` usable images is an error naming `source`."""
    problems = list(problems)
    with ThreadPoolExecutor(max(1, default_workers())) as pool:
        decoded = list(pool.map(lambda item: _one(item[0], item[1], size, *item[2:]), items))
    good = []
    for image, target, dropped in decoded:
        problems += dropped
        if image is not None:
            good.append((image, target))
    if len(good) < least:
        first = f"; the first problem: {problems[0][0]}: {problems[0][1]}" if problems else ""
        raise UserError(f"{source} has {len(good)} usable image(s); {needs} at least "
                        f"{least}{first}")
    channels = 3 if any(image.shape[0] != 1 for image, _ in good) else 1
    if size is None:
        size = Counter(tuple(image.shape[-2:]) for image, _ in good).most_common(1)[0][0]
    fitted = [fit(image, target, size, channels) for image, target in good]
    images = torch.stack([image for image, _ in fitted]).contiguous()
    targets = [target for _, target in fitted]
    return BoxedImages(images, split_labels(targets), list(classes), targets, problems)
