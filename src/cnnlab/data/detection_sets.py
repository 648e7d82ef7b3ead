"""The public detection sets: Penn-Fudan pedestrians (PyTorch's detection tutorial) and
PASCAL VOC 2012 detection.

Both are read offline from `data_dir` and fetched only when the caller asks for `download`:

    DATA_DIR/PennFudanPed/PNGImages/<name>.png
                          PedMasks/<name>_mask.png    one value per pedestrian: 1, 2, ... K
                                                      on its pixels, 0 on the background
    DATA_DIR/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
                               Annotations/<id>.xml   <object>: <name>, <difficult>, <bndbox>
                               ImageSets/Main/train.txt, val.txt   one id a line

Penn-Fudan: every pedestrian is one "person" with its instance mask, and its box is the
mask's tight box (on pixel edges, see boxes.py). The set has no split of its own; the
tutorial holds out 50 of its 170 images for testing, picked at random. Here the held-out
images are fixed: the sorted names in a permutation seeded with SPLIT_SEED, the last
round(n * 50 / 170) of them (50 for the whole set) test, so every run, seed and machine tests
on the same images.

VOC: the 20 classes with boxes only (VOC's instance masks, SegmentationObject, exist for a
small part of the images). A <bndbox> holds 1-based pixel indices, first and last pixel
inside, so x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax on pixel edges. Objects marked
<difficult>1</difficult> are kept out of the targets: VOC's own evaluation ignores them,
neither rewarding nor punishing a detector for them, and a box the annotators themselves
found hard to see is a poor thing to teach. (COCO-style mAP, which has no "ignore", then
counts a detection of one as a false positive, so scores are slightly pessimistic.) VOC's
own test annotations are not public: its val list is the test split here, and the catalogue
carves validation out of train.

An image whose annotation file is missing or unusable is left out with its reason
(RUN/skipped.txt); an object that cannot be used (an unknown class, a box of no size or
wholly outside the image) is left out of its image's targets, with its reason; an image
without objects is kept, a valid negative, but one whose objects were all left out (or all
difficult) is not: its objects are real, and it would teach them as background. A difficult
object beside usable ones stays in its image untaught, as background: torchvision's detectors
have no "ignore this region".
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .boxed_files import ImageLeftOut, boxed_images
from .boxes import BoxedImages, mask_boxes
from .catalog import SPLIT_SEED
from .images import BadImage, opened
from .segmentation_sets import VOC_CLASSES, read_ids
from .standard import DOWNLOAD_ERRORS, missing_files

PENN_FUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
PENN_FUDAN_TITLE = "Penn-Fudan pedestrians"
PENN_FUDAN_HINT = f"from {PENN_FUDAN_URL}, extracted into the data folder"
VOC_TITLE = "PASCAL VOC 2012 detection"
VOC_HINT = ("from VOCtrainval_11-May-2012.tar of http://host.robots.ox.ac.uk/pascal/VOC/"
            "voc2012/, extracted into the data folder")
VOC_OBJECTS = VOC_CLASSES[1:]  # without background: label k names VOC_OBJECTS[k - 1]
# The tutorial's hold-out: 50 of the set's 170 images.
PENN_FUDAN_TEST, PENN_FUDAN_COUNT = 50, 170

# Every image is resized straight to one working size as it is decoded (boxes scaled, masks
# by nearest neighbour), for the in-memory tensor, and so that a detector's cost per image is
# known in advance. The sides suit a CPU, where a detector's cost grows with the pixels it
# sees: 256 x 256 is 41% of the pixels of 400 x 400. Penn-Fudan is 170 photographs, so memory
# is no concern, and its pedestrians stand large in them: 256 keeps them large. VOC's trainval
# has many thousands of images, so memory sets its side: 160 x 160 RGB is 76,800 bytes an
# image, 77 MB per thousand images; the same side as voc-segmentation.
PENN_FUDAN_SIDE = 256
VOC_DETECTION_SIDE = 160


# --- fetching ------------------------------------------------------------------------------

def _absent(paths: list[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def _ensure(title: str, needed: list[Path], hint: str, download: bool,
            fetch: Callable[[], object]) -> None:
    """The files in place, fetched first if asked for; else one sentence naming them."""
    if download and _absent(needed):
        try:
            fetch()
        except DOWNLOAD_ERRORS as exc:
            if _absent(needed):  # the files may have arrived all the same (a later step failed)
                raise missing_files(title, _absent(needed), hint, exc) from None
    if _absent(needed):
        raise missing_files(title, _absent(needed), hint)


# --- Penn-Fudan ----------------------------------------------------------------------------

def _fetch_penn_fudan(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(PENN_FUDAN_URL, download_root=str(root))


def penn_fudan(data_dir: str, download: bool = False) -> tuple[BoxedImages, BoxedImages]:
    """(train, test) Penn-Fudan pedestrians with boxes and instance masks, at PENN_FUDAN_SIDE
    squared; the test part is the fixed hold-out of the module docstring."""
    root = Path(data_dir).expanduser()
    base = root / "PennFudanPed"
    images, masks = base / "PNGImages", base / "PedMasks"
    _ensure(PENN_FUDAN_TITLE, [images, masks], PENN_FUDAN_HINT, download,
            lambda: _fetch_penn_fudan(root))
    files = sorted(p for p in images.iterdir() if p.suffix.lower() == ".png"
                   and not p.name.startswith("."))
    test_count = round(len(files) * PENN_FUDAN_TEST / PENN_FUDAN_COUNT)
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(SPLIT_SEED))
    held = set(order[len(files) - test_count:].tolist())
    side = (PENN_FUDAN_SIDE, PENN_FUDAN_SIDE)

    def part(indices, least, needs):
        items = [(files[i], partial(_pedestrians, masks / f"{files[i].stem}_mask.png"))
                 for i in indices]
        return boxed_images(items, ["person"], [], source=str(images), size=side, least=least,
                            needs=needs)

    train = [i for i in range(len(files)) if i not in held]
    # The training part must leave one image to validate on; the test part needs one.
    return (part(train, 2, "training and validation need"),
            part(sorted(held), 1, "testing needs"))


def _pedestrians(mask_path: Path, image: torch.Tensor):
    """Boxes and masks of one photograph's pedestrians, from its instance-id mask."""
    with opened(mask_path) as img:
        if img.mode not in ("1", "L", "P") and not img.mode.startswith("I"):
            raise BadImage(f"{mask_path} is a {img.mode} image; Penn-Fudan's masks hold one "
                           "value per pedestrian (a grey or palette PNG).")
        ids = np.asarray(img).astype(np.int64)  # a palette PNG's values are the ids
    if ids.shape != tuple(image.shape[-2:]):
        raise BadImage(f"its mask {mask_path} is {ids.shape[1]}x{ids.shape[0]} pixels, the image "
                       f"{image.shape[-1]}x{image.shape[-2]}; a mask has its image's size.")
    people = np.unique(ids[ids > 0])
    masks = torch.from_numpy((ids[None] == people[:, None, None]).astype(np.uint8))
    return {"boxes": mask_boxes(masks), "labels": torch.ones(len(people), dtype=torch.int64),
            "masks": masks}, []


# --- VOC detection -------------------------------------------------------------------------

def _fetch_voc(root: Path) -> None:
    from torchvision import datasets

    # trainval: the archive holds both lists; torchvision checks its md5 before extracting.
    datasets.VOCDetection(root=str(root), year="2012", image_set="trainval", download=True)


def voc_detection(data_dir: str, download: bool = False) -> tuple[BoxedImages, BoxedImages]:
    """VOC 2012's detection train list (to train and validate) and val list (to test): 20
    classes, boxes only, difficult objects left out, at VOC_DETECTION_SIDE squared."""
    root = Path(data_dir).expanduser()
    base = root / "VOCdevkit" / "VOC2012"
    lists = [base / "ImageSets" / "Main" / f"{name}.txt" for name in ("train", "val")]
    _ensure(VOC_TITLE, [base / "JPEGImages", base / "Annotations", *lists], VOC_HINT, download,
            lambda: _fetch_voc(root))
    side = (VOC_DETECTION_SIDE, VOC_DETECTION_SIDE)

    def part(listing: Path, least: int, needs: str) -> BoxedImages:
        items = [(base / "JPEGImages" / f"{name}.jpg",
                  partial(_voc_objects, base / "Annotations" / f"{name}.xml"))
                 for name in read_ids(listing)]
        return boxed_images(items, VOC_OBJECTS, [], source=str(listing), size=side,
                            least=least, needs=needs)

    return (part(lists[0], 2, "training and validation need"),
            part(lists[1], 1, "testing needs"))


def _voc_objects(xml_path: Path, image: torch.Tensor):
    """Boxes and labels of one VOC annotation file, for an image of the image's size."""
    if not xml_path.is_file():
        raise BadImage(f"its annotation file {xml_path} does not exist.")
    try:
        tree = ElementTree.parse(xml_path)
    except (ElementTree.ParseError, OSError) as exc:
        raise BadImage(f"its annotation file {xml_path} is not readable XML ({exc}).") from None
    h, w = image.shape[-2:]
    boxes, labels, dropped = [], [], []
    objects = list(tree.getroot().iter("object"))
    for number, element in enumerate(objects, start=1):
        name = (element.findtext("name") or "").strip()
        where = f"{xml_path.name} object {number} ({name or 'unnamed'})"
        if (element.findtext("difficult") or "0").strip() == "1":
            continue  # see the module docstring
        if name not in VOC_OBJECTS:
            dropped.append((str(xml_path), f"{where}: not one of VOC's 20 classes."))
            continue
        try:
            xmin, ymin, xmax, ymax = (float(element.find("bndbox").findtext(tag))
                                      for tag in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            dropped.append((str(xml_path), f"{where}: no bndbox of four numbers."))
            continue
        x1, y1, x2, y2 = max(xmin - 1, 0), max(ymin - 1, 0), min(xmax, w), min(ymax, h)
        if not all(map(math.isfinite, (x1, y1, x2, y2))) or x2 <= x1 or y2 <= y1:
            dropped.append((str(xml_path), f"{where}: its box {xmin:g}, {ymin:g}, {xmax:g}, "
                                           f"{ymax:g} has no size inside the {w}x{h} image."))
            continue
        boxes.append([x1, y1, x2, y2])
        labels.append(VOC_OBJECTS.index(name) + 1)
    if objects and not labels:
        raise ImageLeftOut(f"none of the {len(objects)} object(s) of {xml_path.name} can be "
                           "taught (difficult, or left out as above); without them the image "
                           "would teach that its objects are background.", dropped)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64)}, dropped
