"""Photographs cut into patches, for learning to upscale (--task superres).

`photos` is built from the photographs scikit-image and scikit-learn ship (no download);
`photos:PATH` from a folder of the user's own. Whole photographs are held out for testing,
never patches of a photograph that also trains: an upscaler must not be judged on the very
textures it learned from.

    training:   TRAIN_PATCHES random PATCH x PATCH crops, the same number from each training
                photograph (seeded: the same patches every run); --task superres takes a
                tenth of them for validation (catalog.py's split)
    test:       the held-out photographs tiled into PATCH x PATCH squares, edge to edge

The patches are the originals (RGB, uint8); the task makes the low-resolution input from
them at the run's --scale (tasks/superres.py). PATCH = 48 divides by 2, 3 and 4.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .images import decode_image

PATCH = 48           # pixels on a side, at the high resolution
TRAIN_PATCHES = 3000  # in all, shared equally between the training photographs
MAX_TEST_TILES = 120  # per held-out photograph (a phone photo would give thousands)
SEED = 0
# scikit-image's photographs (and scikit-learn's china.jpg) train; three photographs of
# other subjects, one of them scikit-learn's flower.jpg, are held out for testing.
TRAIN_PHOTOS = ("chelsea", "rocket", "china", "camera", "coins", "moon", "hubble_deep_field",
                "immunohistochemistry", "retina", "brick", "grass", "gravel")
TEST_PHOTOS = ("astronaut", "coffee", "flower")
CLASSES = ["photograph"]


@dataclass
class Patches:
    images: torch.Tensor  # uint8 N x 3 x PATCH x PATCH
    labels: torch.Tensor  # all 0: one kind of image
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    problems: list[tuple[str, str]] = field(default_factory=list)  # files left out, and why


def _bundled(name: str) -> torch.Tensor:
    """One shipped photograph as uint8 C x H x W."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        array = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data
        array = getattr(skimage.data, name)()
    array = np.asarray(array)
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


def _colour(image: torch.Tensor) -> torch.Tensor:
    """uint8 3 x H x W: grey repeated, alpha dropped."""
    return image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)


def random_patches(photos: list[torch.Tensor], count: int, seed: int = SEED) -> torch.Tensor:
    """`count` PATCH-sided crops, as equal a number from each photograph as divides."""
    generator = torch.Generator().manual_seed(seed)
    patches = []
    for i, photo in enumerate(photos):
        share = count // len(photos) + (i < count % len(photos))
        tops = torch.randint(0, photo.shape[1] - PATCH + 1, (share,), generator=generator)
        lefts = torch.randint(0, photo.shape[2] - PATCH + 1, (share,), generator=generator)
        patches += [photo[:, t:t + PATCH, left:left + PATCH]
                    for t, left in zip(tops.tolist(), lefts.tolist())]
    return torch.stack([_colour(p) for p in patches]).contiguous()


def tiles(photos: list[torch.Tensor], seed: int = SEED) -> torch.Tensor:
    """Each photograph cut edge to edge into PATCH-sided squares (what is left over at the
    right and bottom is dropped); at most MAX_TEST_TILES of a photograph, picked at random."""
    generator, found = torch.Generator().manual_seed(seed), []
    for photo in photos:
        grid = [photo[:, t:t + PATCH, left:left + PATCH]
                for t in range(0, photo.shape[1] - PATCH + 1, PATCH)
                for left in range(0, photo.shape[2] - PATCH + 1, PATCH)]
        if len(grid) > MAX_TEST_TILES:
            keep = torch.randperm(len(grid), generator=generator)[:MAX_TEST_TILES].sort().values
            grid = [grid[i] for i in keep.tolist()]
        found += [_colour(tile) for tile in grid]
    return torch.stack(found).contiguous()


def _sets(train: list[torch.Tensor], test: list[torch.Tensor],
          problems: list[tuple[str, str]]) -> tuple[Patches, Patches]:
    patches, held_out = random_patches(train, TRAIN_PATCHES), tiles(test)
    return (Patches(patches, torch.zeros(len(patches), dtype=torch.long), problems=problems),
            Patches(held_out, torch.zeros(len(held_out), dtype=torch.long)))


def photos(data_dir=None, download=None) -> tuple[Patches, Patches]:
    """The bundled photographs: TRAIN_PHOTOS cut into patches, TEST_PHOTOS into tiles."""
    return _sets([_bundled(n) for n in TRAIN_PHOTOS], [_bundled(n) for n in TEST_PHOTOS], [])


def photo_folder(path: str) -> tuple[Patches, Patches]:
    """PATH/**/<image files>: every readable photograph at least PATCH pixels on each side;
    a fifth of them (at least one) held out whole for testing, chosen with a fixed seed."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    usable, problems = [], []
    for file in files:
        try:
            image = decode_image(file)
        except UserError as exc:
            problems.append((str(file), str(exc)))
            continue
        if min(image.shape[-2:]) < PATCH:
            problems.append((str(file), f"smaller than {PATCH} pixels on a side"))
        else:
            usable.append(image)
    if len(usable) < 2:
        raise UserError(f"folder {root} has {len(usable)} usable photograph(s); super-resolution "
                        f"needs at least two (one is held out for testing), each at least "
                        f"{PATCH}x{PATCH} pixels.")
    order = torch.randperm(len(usable), generator=torch.Generator().manual_seed(SEED)).tolist()
    held = max(1, len(usable) // 5)
    return _sets([usable[i] for i in order[held:]], [usable[i] for i in order[:held]], problems)
