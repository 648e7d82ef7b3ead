"""Named data sets -> train / validation / test splits with class names.

`--dataset NAME` accepts every name in CATALOG, plus `folder:PATH` and `csv:PATH` for the
user's own images. Sets that ship without a validation (or test) split get a fixed, seeded,
stratified one, so runs with different --seed values share the same held-out images.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..errors import UserError, unknown_name
from ..logs import LOGGER
from . import files as user_files
from . import sources

SPLIT_SEED = 0
# Fractions held out where a data set has no split of its own.
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1


@dataclass
class Split:
    """Images already in memory (uint8 N x C x H x W, native size)."""
    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None = None  # uint8 N x H x W class indices (255: ignore), if any
    # One dict per image (boxes, labels and maybe instance masks; data/boxes.py), for sets
    # with a box per object; None for the others.
    targets: list[dict] | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FileSplit:
    """Image files not yet decoded (the user's folder or CSV)."""
    files: list[Path]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataSplits:
    name: str
    classes: list[str]
    train: Split | FileSplit
    val: Split | FileSplit
    test: Split | FileSplit
    augment: str = "none"   # the preset that suits these images (see Entry.augment)
    problems: list[tuple[str, str]] = field(default_factory=list)  # CSV rows that name no file
    mask_classes: list[str] | None = None  # what the masks' values name, for sets with masks


@dataclass(frozen=True)
class Entry:
    load: Callable  # (data_dir, download) or (path) -> LabelledImages | (train, test) | LabelledFiles
    description: str
    origin: str
    augment: str = "flip-crop"  # digits and letters must not be mirrored: "none" for those


def _lazy(module: str, name: str) -> Callable:
    """Import a loader only when its data set is asked for (torchvision datasets, skimage)."""
    return lambda *args: getattr(importlib.import_module(module, __package__), name)(*args)


CATALOG: dict[str, Entry] = {
    "digits": Entry(lambda d, dl: _lazy(".digits", "digits")(), "1,797 8x8 handwritten digits (scikit-learn)",
                    "built in", "none"),
    "lfw-faces": Entry(lambda d, dl: sources.lfw_faces(),
                       "100 faces and 100 non-faces, 25x25 grey (scikit-image)", "built in"),
    "shapes": Entry(_lazy(".shapes", "shapes"),
                    "circles, squares and triangles on textured backgrounds, 32x32", "generated"),
    "mnist": Entry(_lazy(".standard", "mnist"), "70,000 28x28 handwritten digits",
                   "torchvision (--download)", "none"),
    "fashion-mnist": Entry(_lazy(".standard", "fashion_mnist"), "70,000 28x28 clothing images",
                           "torchvision (--download)"),
    "cifar10": Entry(_lazy(".standard", "cifar10"), "60,000 32x32 colour images, 10 classes",
                     "binary release (--download)"),
    "cifar100": Entry(_lazy(".standard", "cifar100"), "60,000 32x32 colour images, 100 classes",
                      "binary release (--download)"),
    "cifar2": Entry(_lazy(".standard", "cifar2"), "airplane vs bird from CIFAR-10 (CS428)",
                    "from cifar10"),
    "voc-segmentation": Entry(_lazy(".segmentation_sets", "voc_segmentation"),
                              "PASCAL VOC 2012 photographs with masks of 20 object classes and "
                              "background, at 160x160", "torchvision layout (--download)"),
    "oxford-pets": Entry(_lazy(".segmentation_sets", "oxford_pets"),
                         "Oxford-IIIT Pet: cats and dogs with pet/background masks from the "
                         "trimaps, at 128x128", "torchvision layout (--download)"),
    "shapes-objects": Entry(_lazy(".scenes", "detection_shapes"),
                            "several shapes per image with boxes and instance masks, 64x64",
                            "generated"),
    "penn-fudan": Entry(_lazy(".detection_sets", "penn_fudan"),
                        "Penn-Fudan pedestrians with boxes and instance masks (PyTorch's "
                        "detection tutorial), at 256x256", "web archive (--download)"),
    "voc-detection": Entry(_lazy(".detection_sets", "voc_detection"),
                           "PASCAL VOC 2012 photographs with boxes of 20 object classes, at "
                           "160x160", "torchvision layout (--download)"),
    "moving-shapes": Entry(_lazy(".moving_shapes", "moving_shapes"),
                           "clips of 8 32x32 frames, a shape moving up, down, left or right "
                           "(--task video)", "generated", "none"),
    "ucf101": Entry(_lazy(".video_sets", "ucf101"), "UCF101 split 1: 13,320 videos of 101 "
                    "actions, each 8 frames of 112x112 (--task video; needs PyAV)",
                    "authors' RAR archives (--download)", "none"),
    "hmdb51": Entry(_lazy(".video_sets", "hmdb51"), "HMDB51 split 1: 5,100 of its videos of 51 "
                    "actions, each 8 frames of 112x112 (--task video; needs PyAV)",
                    "authors' RAR archives (--download)", "none"),
    "lfw-people": Entry(_lazy(".lfw", "lfw_people"), "Labeled Faces in the Wild, 64x64 "
                        "faces: View 1's training people, its other people for testing "
                        "(--task embed)", "torchvision layout (placed by hand)"),
    "lfw-pairs": Entry(_lazy(".lfw", "lfw_pairs"), "LFW trained as lfw-people, tested on "
                       "View 2's 6,000 pairs by the 10-fold protocol (--task embed)",
                       "torchvision layout (placed by hand)"),
    "photos": Entry(_lazy(".photo_patches", "photos"), "48x48 patches of 12 photographs for "
                    "--task superres, 3 others held out whole (scikit-image, scikit-learn)",
                    "built in", "none"),
    "shapes-captions": Entry(_lazy(".shapes_captions", "shapes_captions"),
                             "48x48 scenes of two shapes, four sentences each (\"a red circle "
                             "above a blue square\"; --task caption)", "generated", "none"),
    "flickr8k": Entry(_lazy(".caption_files", "flickr8k_release"), "Flickr8k: 8,000 "
                      "photographs, five sentences each, its own train/dev/test lists (--task "
                      "caption)", "release archives (--download)", "none"),
    "coco-captions": Entry(_lazy(".caption_files", "coco_captions_release"), "COCO 2017 "
                           "validation: 5,000 photographs, five or more sentences each (--task "
                           "caption)", "COCO archives (--download)", "none"),
}
USER_SETS: dict[str, Entry] = {
    "folder": Entry(user_files.folder, "PATH/<class>/<image files>", "your files"),
    "csv": Entry(user_files.csv_listing, "rows of path,label (the lectures' custom Dataset)",
                 "your files"),
    "masks": Entry(_lazy(".mask_folder", "mask_folder"),
                   "PATH/images/<image>, PATH/masks/<same name>.png of class indices (255: "
                   "ignore), PATH/classes.txt", "your files"),
    "coco": Entry(_lazy(".coco_folder", "coco_folder"),
                  "PATH/annotations.json (or instances.json) in COCO's format, PATH/images/"
                  "<file_name>: boxes, and masks from polygons or RLE", "your files"),
    "videos": Entry(_lazy(".video_files", "video_folder"), "PATH/<class>/<video files> "
                    "(.mp4 .avi .mkv .mov .webm), each 8 frames of 112x112, or "
                    "PATH?frames=N&size=N (--task video; needs PyAV)", "your files", "none"),
    "photos": Entry(_lazy(".photo_patches", "photo_folder"), "PATH/**/<photographs> cut into "
                    "patches for --task superres, a fifth held out whole", "your files", "none"),
    "flickr8k": Entry(_lazy(".caption_files", "flickr8k"), "PATH/Flicker8k_Dataset/*.jpg, "
                      "PATH/Flickr8k.token.txt and Flickr_8k.{train,dev,test}Images.txt "
                      "(--task caption)", "your files", "none"),
    "coco-captions": Entry(_lazy(".caption_files", "coco_captions"), "PATH/captions_<part>.json "
                           "with images in PATH/<part>/ or PATH/images/ (--task caption)",
                           "your files", "none"),
}


def typical_size(split: Split | FileSplit, sample: int = 32) -> tuple[int, int] | None:
    """(H, W) of the images: the tensor's, or the median of a few files' headers (nothing is
    decoded); None when no file can be read."""
    if isinstance(split, Split):
        return tuple(split.images.shape[-2:])
    sizes = []
    for path in split.files[:sample]:
        try:
            with Image.open(path) as img:
                sizes.append(img.size[::-1])
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue  # decode.py reports these files; here they only do not count
    if not sizes:
        return None
    heights, widths = sorted(h for h, _ in sizes), sorted(w for _, w in sizes)
    return heights[len(sizes) // 2], widths[len(sizes) // 2]


def list_datasets() -> list[str]:
    return sorted(CATALOG) + [f"{kind}:PATH" for kind in USER_SETS]


def load_dataset(name: str, data_dir: str = "data", download: bool = False) -> DataSplits:
    """Load a catalogued data set (or folder:PATH / csv:PATH) and split it."""
    kind, colon, argument = name.partition(":")
    if colon and kind in USER_SETS:
        if not argument:
            raise UserError(f"--dataset {kind}:PATH needs a path after the colon.")
        entry, data = USER_SETS[kind], USER_SETS[kind].load(argument)
    elif name in CATALOG:
        entry, data = CATALOG[name], CATALOG[name].load(data_dir, download)
    else:
        raise unknown_name("data set", name, list_datasets())
    return _split(name, entry, data)


def _masks(data) -> torch.Tensor | None:
    return getattr(data, "class_masks", None)  # segmentation sets (shapes, masks:PATH, VOC...)


def _targets(data) -> list[dict] | None:
    targets = getattr(data, "targets", None)  # detection sets (boxes.BoxedImages)
    return targets if isinstance(targets, list) else None


def _part(data, idx: torch.Tensor | None = None) -> Split:
    """Images `idx` of an in-memory set (all of it for None), with their masks and targets."""
    masks, targets = _masks(data), _targets(data)
    if idx is None:
        return Split(data.images, data.labels, masks, targets)
    return Split(data.images[idx], data.labels[idx], None if masks is None else masks[idx],
                 None if targets is None else [targets[i] for i in idx.tolist()])


def _split(name: str, entry: Entry, data) -> DataSplits:
    if isinstance(data, tuple):  # the set's own train/test split; validation comes from train
        train, test = data
        fit, val = stratified_split(train.labels, VAL_FRACTION)
        # what the loader left out, from both parts (segmentation and detection sets)
        problems = list(getattr(train, "problems", [])) + list(getattr(test, "problems", []))
        return DataSplits(name, train.classes, _part(train, fit), _part(train, val),
                          _part(test), entry.augment, problems,
                          getattr(train, "mask_classes", None))
    rest, test = stratified_split(data.labels, TEST_FRACTION, data.classes)
    fit, val = stratified_split(data.labels[rest], VAL_FRACTION / (1 - TEST_FRACTION))
    fit, val = rest[fit], rest[val]
    unseen = sorted(set(data.labels.tolist()) - set(data.labels[fit].tolist()))
    if unseen:
        LOGGER.warning("%s: no training image of %s (too few images to hold some out); the "
                       "model cannot learn %s.", name, ", ".join(data.classes[c] for c in unseen),
                       "them" if len(unseen) > 1 else "it")
    if isinstance(data, user_files.LabelledFiles):
        pick = lambda idx: FileSplit([data.files[i] for i in idx], data.labels[idx])  # noqa: E731
        problems = data.problems
    else:
        pick = lambda idx: _part(data, idx)  # noqa: E731
        problems = list(getattr(data, "problems", []))  # masks:PATH's, coco:PATH's left out
    return DataSplits(name, data.classes, pick(fit), pick(val), pick(test), entry.augment, problems,
                      getattr(data, "mask_classes", None))


def stratified_split(labels: torch.Tensor, fraction: float,
                     classes: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held out), the held-out part with the class balance of the whole.
    Given the class names, a class too small to stratify is named in a warning."""
    everything = torch.arange(len(labels)).numpy()
    counts = torch.bincount(labels)
    # Stratifying needs two examples of every class; tiny user folders fall back to random.
    single = (counts == 1).nonzero().flatten().tolist()
    stratify = None if single else labels.numpy()
    if single and classes:
        LOGGER.warning("class%s %s %s a single image, so the split cannot keep each class's "
                       "share; it is random instead.", "es" if len(single) > 1 else "",
                       ", ".join(classes[c] for c in single),
                       "have" if len(single) > 1 else "has")
    try:
        kept, held = shuffle_split(len(everything), fraction, stratify)
    except ValueError:
        if len(everything) < 2:  # nothing could be held out
            raise UserError(f"the data set has {len(everything)} usable image(s); it needs at "
                            "least 3, so that some can be held out for validation and "
                            "testing.") from None
        kept, held = shuffle_split(len(everything), fraction)
    return torch.from_numpy(kept), torch.from_numpy(held)


# The split is scikit-learn's train_test_split(test_size=fraction, stratify=labels,
# random_state=SPLIT_SEED), draw for draw (tests/test_same_results.py compares them), so the
# held-out images are those of earlier runs; importing scikit-learn for it took a second or two.

def shuffle_split(count: int, fraction: float, labels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) indices of `count` items, ceil(fraction * count) held out: a seeded
    permutation, or, given `labels`, each class's share (StratifiedShuffleSplit). ValueError
    where that cannot be done (train_test_split's cases)."""
    held = math.ceil(fraction * count)
    kept = count - held
    if kept <= 0 or held <= 0:
        raise ValueError("too few items to split")
    rng = np.random.RandomState(SPLIT_SEED)
    if labels is None:
        order = rng.permutation(count)
        return order[held:held + kept], order[:held]
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2 or kept < len(classes) or held < len(classes):
        raise ValueError("too few items of some class to stratify")
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    kept_per_class = _approximate_mode(counts, kept, rng)
    held_per_class = _approximate_mode(counts - kept_per_class, held, rng)
    keep, hold = [], []
    for i in range(len(classes)):
        shuffled = members[i].take(rng.permutation(counts[i]), mode="clip")
        keep.extend(shuffled[:kept_per_class[i]])
        hold.extend(shuffled[kept_per_class[i]:kept_per_class[i] + held_per_class[i]])
    return rng.permutation(keep), rng.permutation(hold)


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per class, how many of `draws` it gets in proportion to `counts`: the floors, then one
    more each for the largest remainders, ties broken at random (scikit-learn's rule)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


def describe_datasets() -> list[dict]:
    """What `cnnlab datasets` lists."""
    rows = [{"name": name, "description": e.description, "source": e.origin, "augment": e.augment}
            for name, e in sorted(CATALOG.items())]
    rows += [{"name": f"{kind}:PATH", "description": e.description, "source": e.origin,
              "augment": e.augment} for kind, e in USER_SETS.items()]
    return rows
