"""The public segmentation sets: PASCAL VOC 2012 and the Oxford-IIIT Pet trimaps.

Both are read offline from `data_dir`, laid out as torchvision's datasets lay them out, and
fetched through torchvision only when the caller asks for `download`:

    DATA_DIR/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
                               SegmentationClass/<id>.png     palette PNG of class indices,
                                                              255 on the objects' outlines
                               ImageSets/Segmentation/train.txt, val.txt   one id a line
    DATA_DIR/oxford-iiit-pet/images/<name>.jpg
                             annotations/trimaps/<name>.png   1 pet, 2 background, 3 border
                             annotations/trainval.txt, test.txt   "<name> <class id> <species>
                                                                  <breed id>" a line

VOC's own test masks are not public, so its official val split is the test split here; the
catalogue carves validation out of train for both sets. An id a list names whose image or
mask is missing or unusable is left out with its reason (RUN/skipped.txt), as for masks:PATH.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .mask_folder import IGNORE, MaskedImages, masked_images
from .standard import DOWNLOAD_ERRORS, missing_files

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
PET_CLASSES = ["background", "pet"]
# A trimap stores 1 on the pet, 2 on the background and 3 on the uncertain band around the
# pet's outline; that band counts nowhere, as VOC's outlines do not.
TRIMAP_VALUES = {1: 1, 2: 0, 3: IGNORE}

# Every pair is resized straight to one working size as it is decoded (images bilinearly,
# masks by nearest neighbour): the photographs come in many sizes, and only pairs of one size
# stack into the in-memory tensor segmentation trains from. Straight, not shorter side and
# centre crop: every labelled pixel stays in (a test score counts each object whole), and it
# is the geometry the pipeline uses for a new photograph at evaluate and predict time.
# The sides suit a laptop CPU: one rough measurement here of the default U-Net's training
# steps (21 classes, 2 shared cores, float32, batch 16) gave about 25 images/s at 128 x 128,
# 14 at 160 and 2.5 at 256. In memory a pair takes 4 bytes a pixel: VOC's 2,913 pairs at
# their full ~500 x 375 would take about 2 GB, at 160 x 160 about 300 MB. Pets fill their
# photographs; VOC's objects are often small (bottles, distant birds), so VOC keeps more.
VOC_SIDE = 160
PET_SIDE = 128


@dataclass(frozen=True)
class PublicSet:
    title: str
    folder: str           # under DATA_DIR
    images: str           # under folder: <id>.jpg
    masks: str            # under folder: <id>.png
    lists: tuple[str, str]  # under folder: the train part's ids, the test part's
    classes: list[str]
    side: int
    hint: str             # where the files come from, for the one-sentence error
    values: dict[int, int] | None = None  # stored mask value -> class index; None: as stored

    def needed(self, base: Path) -> list[Path]:
        return [base / self.images, base / self.masks, *(base / name for name in self.lists)]


VOC = PublicSet(
    "PASCAL VOC 2012 segmentation", "VOCdevkit/VOC2012", "JPEGImages", "SegmentationClass",
    ("ImageSets/Segmentation/train.txt", "ImageSets/Segmentation/val.txt"), VOC_CLASSES,
    VOC_SIDE, "from VOCtrainval_11-May-2012.tar of http://host.robots.ox.ac.uk/pascal/VOC/"
              "voc2012/, extracted into the data folder")
PETS = PublicSet(
    "Oxford-IIIT Pet", "oxford-iiit-pet", "images", "annotations/trimaps",
    ("annotations/trainval.txt", "annotations/test.txt"), PET_CLASSES, PET_SIDE,
    "from images.tar.gz and annotations.tar.gz of https://www.robots.ox.ac.uk/~vgg/data/pets/, "
    "extracted into oxford-iiit-pet/ in the data folder", TRIMAP_VALUES)


def _not_there(paths: list[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def read_ids(path: Path) -> list[str]:
    """The first field of every line that is not blank (VOC: the id; pets: the name, then
    breed and species numbers that segmentation does not use)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 text file ({exc}).") from None
    except OSError as exc:  # a folder of that name, no permission
        raise UserError(f"{path} could not be read ({exc.strerror or exc}).") from None
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def _part(spec: PublicSet, base: Path, listing: str, train: bool) -> MaskedImages:
    pairs = [(base / spec.images / f"{name}.jpg", base / spec.masks / f"{name}.png")
             for name in read_ids(base / listing)]
    # The training part must leave one pair to validate on; the test part needs one.
    least, needs = (2, "training and validation need") if train else (1, "testing needs")
    return masked_images(pairs, spec.classes, [], source=str(base / listing),
                         size=(spec.side, spec.side), values=spec.values, named_by=spec.title,
                         least=least, needs=needs)


def _load(spec: PublicSet, data_dir: str, download: bool,
          fetch: Callable[[Path], object]) -> tuple[MaskedImages, MaskedImages]:
    root = Path(data_dir).expanduser()
    base = root / spec.folder
    if download and _not_there(spec.needed(base)):
        try:
            fetch(root)
        except DOWNLOAD_ERRORS as exc:
            # the files may have arrived all the same (a later step failed): then read them
            if _not_there(spec.needed(base)):
                raise missing_files(spec.title, _not_there(spec.needed(base)), spec.hint,
                                    exc) from None
    if _not_there(spec.needed(base)):
        raise missing_files(spec.title, _not_there(spec.needed(base)), spec.hint)
    train_list, test_list = spec.lists
    return _part(spec, base, train_list, True), _part(spec, base, test_list, False)


def _fetch_voc(root: Path) -> None:
    from torchvision import datasets

    # trainval: the archive holds both lists; torchvision checks its md5 before extracting.
    datasets.VOCSegmentation(root=str(root), year="2012", image_set="trainval", download=True)


def _fetch_pets(root: Path) -> None:
    from torchvision import datasets

    datasets.OxfordIIITPet(root=str(root), split="trainval", target_types="segmentation",
                           download=True)


def voc_segmentation(data_dir: str, download: bool = False) -> tuple[MaskedImages, MaskedImages]:
    """VOC 2012's segmentation train split (to train and validate) and val split (to test):
    20 object classes and background, at VOC_SIDE x VOC_SIDE."""
    return _load(VOC, data_dir, download, _fetch_voc)


def oxford_pets(data_dir: str, download: bool = False) -> tuple[MaskedImages, MaskedImages]:
    """Oxford-IIIT Pet's trainval split (to train and validate) and test split: pet versus
    background from the trimaps, at PET_SIDE x PET_SIDE."""
    return _load(PETS, data_dir, download, _fetch_pets)
