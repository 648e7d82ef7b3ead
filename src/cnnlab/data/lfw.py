"""Labeled Faces in the Wild (Huang et al. 2007) for --task embed, read through torchvision's
LFWPeople and LFWPairs from the folder they use:

    DATA_DIR/lfw-py/lfw_funneled/<Name>/<Name>_0001.jpg   250x250 funneled photographs
    DATA_DIR/lfw-py/lfw-names.txt                          "<Name>\t<images>" a line
    DATA_DIR/lfw-py/peopleDevTrain.txt, peopleDevTest.txt  View 1: a count, then
                                                           "<Name>\t<images>" lines
    DATA_DIR/lfw-py/pairs.txt                              View 2: "10\t300", then per fold
                                                           300 "<Name>\t<n>\t<m>" (same) and
                                                           300 "<Name>\t<n>\t<Other>\t<m>" lines

lfw-people trains on View 1's training people and tests on its test people, who are other
people: verification there is on identities never seen. lfw-pairs trains the same way and
tests on View 2's 6,000 pairs (each pair's two images side by side in the test split), which
tasks/embed.py scores by the standard protocol: ten folds, the threshold chosen on nine and
the accuracy measured on the tenth. View 2's people overlap View 1's training people, as LFW
was published; its own rules train on the other nine folds.

torchvision checks the archive's checksum (lfw-funneled.tgz), which a folder unpacked by
hand need not keep, and no longer downloads LFW at all: here the files themselves are
checked, and --download says where to get them. An image that cannot be read is left out
with its reason (RUN/skipped.txt).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as F

from ..errors import UserError
from .images import BadImage, decode_image
from .sources import LabelledImages

FOLDER = "lfw-py"
IMAGES = "lfw_funneled"
NAMES = "lfw-names.txt"
PEOPLE = {"train": "peopleDevTrain.txt", "test": "peopleDevTest.txt"}
PAIRS = "pairs.txt"
PAIRS_SET = "lfw-pairs"          # the data set whose test split is View 2's pairs
UNSEEN_TEST = ("lfw-people", PAIRS_SET)  # test people kept out of training by LFW itself
FOLDS = 10
# The funneled faces fill about the middle half of each 250x250 photograph; the middle 128
# pixels hold the face and little background, and 64x64 keeps 13,233 of them at 160 MB.
CROP, SIDE = 128, 64
MIRROR = "https://www.kaggle.com/datasets/jessicali9530/lfw-dataset"


@dataclass
class Faces(LabelledImages):
    problems: list[tuple[str, str]] = field(default_factory=list)


def _root(data_dir: str, needed: list[str], download: bool) -> Path:
    root = Path(data_dir) / FOLDER
    missing = [str(root / name) for name in needed if not (root / name).exists()]
    if not missing:
        return root
    how = ("torchvision no longer downloads LFW; " if download else "")
    raise UserError(f"LFW is missing {', '.join(missing)}: {how}unpack lfw-funneled.tgz and put "
                    f"its text files ({', '.join(needed[1:])}) in {root} (a copy: {MIRROR}).")


def _torchvision(kind, root: Path, split: str):
    """torchvision's LFWPeople or LFWPairs over `root`, the files checked by their presence
    (see the module's docstring)."""
    class Present(kind):
        def _check_integrity(self) -> bool:
            return True
    return Present(str(root.parent), split=split, image_set="funneled")


def _face(path: str) -> torch.Tensor:
    image = decode_image(path)
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    return F.resize(F.center_crop(image, [CROP, CROP]), [SIDE, SIDE], antialias=True)


def _faces(paths: list[str], labels: list[int], classes: list[str]) -> Faces:
    images, kept, problems = [], [], []
    for path, label in zip(paths, labels):
        try:
            images.append(_face(path))
            kept.append(label)
        except BadImage as exc:
            problems.append((path, str(exc)))
    if not images:
        raise UserError(f"no LFW image could be read (the first: {problems[0][1]})")
    return Faces(torch.stack(images), torch.tensor(kept), classes, problems)


def _people(data_dir: str, split: str, download: bool) -> Faces:
    from torchvision.datasets import LFWPeople
    root = _root(data_dir, [IMAGES, PEOPLE[split], NAMES], download)
    people = _torchvision(LFWPeople, root, split)
    classes = sorted(people.class_to_idx, key=people.class_to_idx.get)
    return _faces(people.data, people.targets, classes)


def lfw_people(data_dir: str = "data", download: bool = False) -> tuple[Faces, Faces]:
    """(View 1's training people, its test people): no person is in both."""
    return _people(data_dir, "train", download), _people(data_dir, "test", download)


def pairs_images(data_dir: str = "data") -> int:
    """How many images lfw-pairs' test split holds (two a pair), from pairs.txt's first line
    "<folds>\t<matched pairs a fold>"; 0 when it cannot be read (loading then says why)."""
    try:
        with open(Path(data_dir) / FOLDER / PAIRS) as listing:
            folds, per_fold = (int(n) for n in listing.readline().split())
    except (OSError, ValueError):
        return 0
    return folds * per_fold * 2 * 2


def lfw_pairs(data_dir: str = "data", download: bool = False) -> tuple[Faces, Faces]:
    """(View 1's training people, View 2's pairs: images 2k and 2k+1 are pair k, fold
    k // (pairs per fold), the same person when their labels agree)."""
    from torchvision.datasets import LFWPairs
    train = _people(data_dir, "train", download)
    root = _root(data_dir, [IMAGES, PAIRS], download)
    pairs = _torchvision(LFWPairs, root, "10fold")
    index = {name: i for i, name in enumerate(train.classes)}
    paths, labels = [], []
    for (first, second), names in zip(pairs.data, pairs.pair_names):
        for path, name in zip((first, second), names):
            if name not in index:
                raise UserError(f"{root / PAIRS} names {name}, whom {root / NAMES} lacks.")
            paths.append(path)
            labels.append(index[name])
    test = _faces(paths, labels, train.classes)
    if test.problems:  # a pair with an unreadable image cannot be scored: no pair is dropped
        raise UserError(f"{test.problems[0][1]} (LFW's pairs protocol needs every image of "
                        f"{root / PAIRS}; {len(test.problems)} could not be read).")
    return train, test
