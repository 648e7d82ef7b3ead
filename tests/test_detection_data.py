"""Detection data: shapes-objects scenes, coco:PATH, penn-fudan and voc-detection from tiny
sets in their exact layouts (never the network), targets kept through the split, and
augmentation that moves boxes and masks with the image."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image
from torchvision import datasets
from torchvision.datasets import utils as dataset_utils
from torchvision.ops import masks_to_boxes

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.box_augment import BoxAugment, _geometry, augment_one, box_preset
from cnnlab.data.boxes import mask_boxes, to_tv
from cnnlab.data.catalog import SPLIT_SEED
from cnnlab.data.coco_folder import coco_folder
from cnnlab.data.detection_sets import PENN_FUDAN_SIDE, VOC_DETECTION_SIDE, VOC_OBJECTS
from cnnlab.data.scenes import detection_shapes, generate_scenes
from cnnlab.errors import UserError
from cnnlab.tasks.coco_results import coco_results

# pycocotools 2.0.11's decode under numpy 2 warns about a copy keyword; the masks are right.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# --- shapes-objects ------------------------------------------------------------------------

def test_scenes_hold_1_to_max_objects_whose_boxes_are_their_masks_extents():
    data = generate_scenes(300, image_size=48, seed=5, max_objects=4)
    assert data.images.shape == (300, 3, 48, 48) and data.images.dtype == torch.uint8
    assert data.classes == ["circle", "square", "triangle"]
    counts = [len(t["labels"]) for t in data.targets]
    assert min(counts) == 1 and max(counts) == 4
    for image, target in zip(data.images, data.targets):
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        assert boxes.dtype == torch.float32 and labels.dtype == torch.int64
        assert masks.dtype == torch.uint8 and masks.shape == (len(labels), 48, 48)
        assert set(labels.tolist()) <= {1, 2, 3}
        # pixel edges: torchvision's masks_to_boxes gives the last pixel's index instead
        assert torch.equal(boxes, masks_to_boxes(masks) + torch.tensor([0.0, 0, 1, 1]))
        assert int(masks.sum(dim=0).max()) == 1  # no two objects share a pixel
        for mask in masks.bool():  # each object is one flat colour: the mask is where it is
            assert len(torch.unique(image[:, mask], dim=1).T) == 1
    # the split label: the most frequent object class (ties to the smaller)
    first = data.targets[0]["labels"]
    assert int(data.labels[0]) == int(torch.bincount(first).argmax())


def test_scenes_same_seed_same_bytes():
    first, again, other = (generate_scenes(40, seed=s) for s in (3, 3, 4))
    assert torch.equal(first.images, again.images)
    for a, b in zip(first.targets, again.targets):
        assert all(torch.equal(a[key], b[key]) for key in ("boxes", "labels", "masks"))
    assert not torch.equal(first.images, other.images)


def test_shapes_objects_splits_keep_each_images_targets():
    splits = load_dataset("shapes-objects")
    whole = detection_shapes()
    where = {bytes(image.numpy()): i for i, image in enumerate(whole.images)}
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(p) for p in parts) == 2000 and splits.classes == whole.classes
    assert splits.augment == "flip-crop"
    for part in parts:
        assert part.images.shape[1:] == (3, 64, 64) and len(part.targets) == len(part)
        for image, target in zip(part.images, part.targets):
            source = whole.targets[where[bytes(image.numpy())]]
            assert all(torch.equal(target[k], source[k]) for k in ("boxes", "labels", "masks"))


# --- coco:PATH -----------------------------------------------------------------------------

W, H = 40, 30


def _rgb(path: Path, value: int, width: int = W, height: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def _rect(x1, y1, x2, y2, width=W, height=H) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def _polygon(x1, y1, x2, y2) -> list[list[float]]:
    """A rectangle's corners: pycocotools fills exactly the pixels x1..x2-1, y1..y2-1."""
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _uncompressed(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with 0s."""
    flat = mask.T.flatten()
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture
def coco_set(tmp_path):
    """Categories 7 "cat" and 3 "dog" (labels: dog 1, cat 2); good annotations as a polygon, a
    compressed and an uncompressed RLE, one box partly outside; a crowd; an image without
    annotations; an image at twice the size; and one of each kind of broken annotation.
    Returns (root, {image file: expected target}, {annotation id or file: reason part})."""
    from pycocotools import mask as mask_api

    root = tmp_path / "coco"
    cat_mask = _rect(20, 5, 30, 15)
    rle = mask_api.encode(np.asfortranarray(cat_mask))
    rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    b_mask = _rect(2, 20, 12, 28)
    images = [{"id": 1, "file_name": "a.png", "width": W, "height": H},
              {"id": 2, "file_name": "sub/b.png", "width": W, "height": H},
              {"id": 3, "file_name": "empty.png", "width": W, "height": H},
              {"id": 4, "file_name": "missing.png", "width": W, "height": H},
              {"id": 5, "file_name": "only_bad.png", "width": W, "height": H},
              {"id": 6, "file_name": "big.png", "width": 2 * W, "height": 2 * H}]
    for k, entry in enumerate(images):
        if entry["file_name"] != "missing.png":
            _rgb(root / "images" / entry["file_name"], 40 * k + 20, entry["width"],
                 entry["height"])

    def ann(i, image, category, bbox, segmentation=None, **extra):
        return {"id": i, "image_id": image, "category_id": category, "bbox": bbox,
                "segmentation": segmentation if segmentation is not None else
                _polygon(bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]),
                "area": 1, "iscrowd": 0, **extra}

    annotations = [
        ann(10, 1, 3, [4, 6, 8, 10]),                          # dog, polygon
        ann(11, 1, 7, [20, 5, 10, 10], rle),                   # cat, compressed RLE
        ann(12, 1, 3, [34, 24, 10, 10], _polygon(34, 24, 40, 30)),  # partly outside: clipped
        ann(90, 1, 3, [50, 5, 5, 5]),                          # wholly outside
        ann(91, 1, 7, [5, 5, 0, 6]),                           # zero width
        ann(92, 1, 99, [5, 5, 6, 6]),                          # unknown category
        ann(20, 2, 7, [2, 20, 10, 8], _uncompressed(b_mask)),  # cat, uncompressed RLE
        ann(21, 2, 3, [0, 0, 40, 30], _uncompressed(_rect(0, 0, 40, 30)), iscrowd=1),
        ann(40, 4, 3, [1, 1, 5, 5]),                           # its image file is missing
        ann(50, 5, 3, [1, 1, -3, 5]),                          # negative width, alone
        ann(60, 77, 3, [1, 1, 5, 5]),                          # no such image
        ann(61, 6, 7, [10, 20, 20, 30]),                       # on the 80x60 image
    ]
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]}
    (root / "annotations.json").write_text(json.dumps(document))
    expected = {
        "a.png": ([[4, 6, 12, 16], [20, 5, 30, 15], [34, 24, 40, 30]], [1, 2, 1],
                  [_rect(4, 6, 12, 16), cat_mask, _rect(34, 24, 40, 30)]),
        "b.png": ([[2, 20, 12, 28]], [2], [b_mask]),
        "empty.png": ([], [], []),
        # 80x60 -> 40x30: the box halves; the mask, by nearest neighbour, too
        "big.png": ([[5, 10, 15, 25]], [2], [_rect(5, 10, 15, 25)]),
    }
    broken = {"annotation 90": "lies wholly outside the 40x30 image",
              "annotation 91": "has zero or negative size",
              "annotation 92": "unknown category id 99; the categories' ids are 3, 7",
              "annotation 50": "has zero or negative size",
              "annotation 60": "its image_id 77 names no entry",
              "missing.png": "does not exist",
              "only_bad.png": "none of its 1 annotation(s) could be used"}
    return root, expected, broken


def test_coco_folder_loads_the_good_annotations_with_their_boxes_and_masks(coco_set):
    root, expected, _ = coco_set
    data = coco_folder(root)
    assert data.classes == ["dog", "cat"]  # category ids 3 and 7 in id order -> labels 1, 2
    assert data.images.shape == (len(expected), 3, H, W)  # the most common size
    assert len(data.targets) == len(expected)
    # images keep the JSON's order; identified by their flat grey value
    names = {20: "a.png", 60: "b.png", 100: "empty.png", 220: "big.png"}
    for image, target in zip(data.images, data.targets):
        boxes, labels, masks = expected[names[int(image[0, 0, 0])]]
        assert target["boxes"].tolist() == [[float(v) for v in box] for box in boxes]
        assert target["labels"].tolist() == labels
        assert target["masks"].shape == (len(labels), H, W)  # the negative: 0 x H x W
        for got, want in zip(target["masks"], masks):
            np.testing.assert_array_equal(got.numpy(), want)
    assert data.labels.tolist() == [1, 2, 0, 2]  # split labels: the most frequent, 0: none


def test_coco_folder_lists_each_broken_annotation_with_its_reason(coco_set):
    root, _, broken = coco_set
    problems = coco_folder(root).problems
    text = [f"{Path(file).name}\t{reason}" for file, reason in problems]
    for key, reason in broken.items():
        assert any(key in line and reason in line for line in text), (key, text)
    missing = next(line for line in text if line.startswith("missing.png"))
    assert "annotation(s) 40 are left out with it" in missing
    assert len(problems) == len(broken)  # the crowd (21) is not a problem: kept out quietly
    # annotation problems name the image file they belong to
    assert {Path(f).name for f, r in problems if r.startswith("annotation 9")} == {"a.png"}


def test_coco_folder_splits_keep_targets_and_problems(coco_set):
    root, expected, broken = coco_set
    splits = load_dataset(f"coco:{root}")
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(p) for p in parts) == len(expected) and splits.classes == ["dog", "cat"]
    for part in parts:
        assert len(part.targets) == len(part)
        for image, target in zip(part.images, part.targets):
            assert target["masks"].shape[1:] == image.shape[1:]
    assert len(splits.problems) == len(broken)


def test_coco_without_segmentations_loads_boxes_only_and_without_pycocotools(tmp_path,
                                                                            monkeypatch):
    root = tmp_path / "boxes"
    for k in range(3):
        _rgb(root / "images" / f"{k}.png", 50 * k)
    document = {"images": [{"id": k, "file_name": f"{k}.png"} for k in range(3)],
                "categories": [{"id": 1, "name": "thing"}],
                "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4]}]}
    (root / "instances.json").write_text(json.dumps(document))  # the other accepted name
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # as if not installed
    data = coco_folder(root)
    assert not data.has_masks and data.targets[0]["boxes"].tolist() == [[1, 2, 4, 6]]
    document["annotations"][0]["segmentation"] = _polygon(1, 2, 4, 6)
    (root / "instances.json").write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"pip install 'cnnlab\[detect\]'"):
        coco_folder(root)


def test_coco_folder_that_cannot_be_used_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="has no annotations.json or instances.json"):
        coco_folder(tmp_path)
    (tmp_path / "annotations.json").write_text("{not json")
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match="is not valid JSON"):
        coco_folder(tmp_path)


# --- penn-fudan ----------------------------------------------------------------------------

PENN = [f"FudanPed{k:05d}" for k in range(1, 5)] + [f"PennPed{k:05d}" for k in range(1, 4)]


def write_penn_fudan(root: Path) -> Path:
    """7 photographs (flat grey 20 + 30k, two sizes) with 1 or 2 pedestrians as rectangles
    of ids 1, 2 in 'L' and palette 'P' masks; plus one photograph without its mask."""
    base = root / "PennFudanPed"
    for k, name in enumerate(PENN):
        width, height = (W, H) if k % 2 else (50, 40)
        _rgb(base / "PNGImages" / f"{name}.png", 20 + 30 * k, width, height)
        ids = np.zeros((height, width), np.uint8)
        ids[5:25, 10:20] = 1
        if k % 3 == 0:
            ids[2:20, 25:35] = 2
        mask = Image.fromarray(ids, mode="L" if k % 2 else "P")
        if k % 2 == 0:
            mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        (base / "PedMasks").mkdir(exist_ok=True)
        mask.save(base / "PedMasks" / f"{name}_mask.png")
    _rgb(base / "PNGImages" / "PennPed00099.png", 250)
    return root


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to fetch a detection set fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be touched")
    monkeypatch.setattr(datasets, "VOCDetection", refuse)
    monkeypatch.setattr(dataset_utils, "download_and_extract_archive", refuse)


def test_penn_fudan_loads_boxes_masks_and_its_fixed_test_split(tmp_path, offline):
    splits = load_dataset("penn-fudan", data_dir=str(write_penn_fudan(tmp_path)))
    assert splits.classes == ["person"]
    listed = sorted(PENN + ["PennPed00099"])
    order = torch.randperm(len(listed), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test_names = {listed[i] for i in order[-round(len(listed) * 50 / 170):].tolist()}
    shown = {20 + 30 * k: name for k, name in enumerate(PENN)}
    assert {shown[int(image[0, 0, 0])] for image in splits.test.images} == test_names - {
        "PennPed00099"}
    assert sum(len(p) for p in (splits.train, splits.val, splits.test)) == len(PENN)
    side = PENN_FUDAN_SIDE
    for part in (splits.train, splits.val, splits.test):
        assert part.images.shape[1:] == (3, side, side)
        for image, target in zip(part.images, part.targets):
            k = PENN.index(shown[int(image[0, 0, 0])])
            width, height = (W, H) if k % 2 else (50, 40)
            sx, sy = side / width, side / height
            want = [[10 * sx, 5 * sy, 20 * sx, 25 * sy]]
            if k % 3 == 0:
                want.append([25 * sx, 2 * sy, 35 * sx, 20 * sy])
            torch.testing.assert_close(target["boxes"], torch.tensor(want))
            assert target["labels"].tolist() == [1] * len(want)
            # the masks, resized by nearest neighbour, cover their boxes to within a pixel
            assert (mask_boxes(target["masks"]) - target["boxes"]).abs().max() <= 1
    found = {Path(file).name: reason for file, reason in splits.problems}
    assert found.keys() == {"PennPed00099.png"} and "does not exist" in found["PennPed00099.png"]


def test_penn_fudan_download_fetches_the_tutorials_archive(tmp_path, monkeypatch):
    asked = []

    def fetch(url, download_root, **kwargs):  # lays the files out where the archive would
        asked.append(url)
        write_penn_fudan(Path(download_root))
    monkeypatch.setattr(dataset_utils, "download_and_extract_archive", fetch)
    splits = load_dataset("penn-fudan", data_dir=str(tmp_path), download=True)
    assert asked == ["https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"]
    assert len(splits.test) >= 1


# --- voc-detection -------------------------------------------------------------------------

VOC_TRAIN = [f"2008_{k:06d}" for k in range(6)]
VOC_VAL = ["2009_000001", "2009_000002"]


def _voc_xml(path: Path, objects: list[tuple[str, int, tuple]]) -> None:
    parts = ["<annotation><size><width>40</width><height>30</height><depth>3</depth></size>"]
    for name, difficult, (xmin, ymin, xmax, ymax) in objects:
        parts.append(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                     f"<difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
                     f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>"
                     "</object>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts) + "</annotation>")


@pytest.fixture
def voc(tmp_path):
    """6 train and 2 val ids; every image holds a dog (5, 4)-(14, 20) in VOC's 1-based pixels
    and a difficult cat; the first also a person, an object of an unknown class and one
    wholly outside; train.txt also lists an id without its annotation file."""
    base = tmp_path / "VOCdevkit" / "VOC2012"
    for k, name in enumerate(VOC_TRAIN + VOC_VAL):
        _rgb(base / "JPEGImages" / f"{name}.jpg", 20 + 25 * k)
        objects = [("dog", 0, (5, 4, 14, 20)), ("cat", 1, (20, 5, 30, 25))]
        if k == 0:
            objects += [("person", 0, (30, 1, 40, 30)), ("unicorn", 0, (1, 1, 5, 5)),
                        ("car", 0, (45, 5, 60, 20))]
        _voc_xml(base / "Annotations" / f"{name}.xml", objects)
    _rgb(base / "JPEGImages" / "2008_nofile.jpg", 250)
    lists = base / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(VOC_TRAIN + ["2008_nofile"]) + "\n")
    (lists / "val.txt").write_text("\n".join(VOC_VAL) + "\n")
    return tmp_path


def test_voc_detection_loads_boxes_without_difficult_objects_and_val_as_test(voc, offline):
    splits = load_dataset("voc-detection", data_dir=str(voc))
    assert splits.classes == VOC_OBJECTS and len(VOC_OBJECTS) == 20
    shown = {20 + 25 * k: name for k, name in enumerate(VOC_TRAIN + VOC_VAL)}
    # JPEG keeps a flat grey to within a level or two
    named = lambda image: shown[min(shown, key=lambda v: abs(v - int(image[0, 0, 0])))]  # noqa
    assert sorted(map(named, splits.test.images)) == VOC_VAL  # the official val list tests
    assert sum(len(p) for p in (splits.train, splits.val)) == len(VOC_TRAIN)
    side = VOC_DETECTION_SIDE
    sx, sy = side / W, side / H
    dog = [4 * sx, 3 * sy, 14 * sx, 20 * sy]  # 1-based first and last pixels -> pixel edges
    for part in (splits.train, splits.val, splits.test):
        assert part.images.shape[1:] == (3, side, side)
        for image, target in zip(part.images, part.targets):
            assert "masks" not in target
            if named(image) == VOC_TRAIN[0]:
                torch.testing.assert_close(target["boxes"],
                                           torch.tensor([dog, [29 * sx, 0, side, side]]))
                assert target["labels"].tolist() == [VOC_OBJECTS.index(n) + 1
                                                     for n in ("dog", "person")]
            else:  # the difficult cat is not taught
                torch.testing.assert_close(target["boxes"], torch.tensor([dog]))
    found = [(Path(file).name, reason) for file, reason in splits.problems]
    assert len(found) == 3
    assert ("2008_nofile.jpg", f"its annotation file {voc}/VOCdevkit/VOC2012/Annotations/"
                               "2008_nofile.xml does not exist.") in found
    assert any("object 4 (unicorn): not one of VOC's 20 classes" in r for _, r in found)
    assert any("object 5 (car): its box 45, 5, 60, 20 has no size" in r for _, r in found)


@pytest.mark.parametrize("name, folder", [("penn-fudan", "PennFudanPed"),
                                          ("voc-detection", "VOCdevkit")])
def test_absent_files_without_download_name_the_folder_and_download(tmp_path, offline, name,
                                                                     folder):
    with pytest.raises(UserError, match=r"is missing: put .*--download") as caught:
        load_dataset(name, data_dir=str(tmp_path / "empty"))
    assert str(tmp_path / "empty" / folder) in str(caught.value)


# --- augmentation --------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["flip-crop", "strong"]))
def test_augmentation_keeps_boxes_on_their_objects_and_drops_vanished_ones(seed, name):
    """Each object gets its own label, so that what survives can be told apart; the same
    draws, replayed on the masks alone, say where each object went."""
    data = generate_scenes(3, image_size=40, seed=seed, max_objects=3)
    augment = box_preset(name)
    for image, target in zip(data.images, data.targets):
        target = dict(target, labels=torch.arange(1, len(target["labels"]) + 1))
        torch.manual_seed(seed)
        out_image, out = augment_one(image, target, augment)
        torch.manual_seed(seed)
        reference_image, moved = _geometry(augment, (40, 40))(*to_tv(image, target))
        assert out_image.shape == image.shape and out_image.dtype == torch.uint8
        assert torch.equal(out_image, reference_image)
        kept = out["labels"] - 1
        assert len(out["boxes"]) == len(out["masks"]) == len(kept)
        assert torch.equal(out["masks"], moved["masks"][kept])  # each mask is its object's
        visible = moved["masks"].flatten(1).sum(dim=1)
        extent = mask_boxes(moved["masks"])
        wide = ((extent[:, 2:] - extent[:, :2]) >= 2).all(dim=1)
        assert set(kept.tolist()) >= set(torch.nonzero(wide).flatten().tolist())  # visible: kept
        assert not set(kept.tolist()) & set(torch.nonzero(visible == 0).flatten().tolist())  # gone
        if len(kept):
            assert (out["boxes"] - mask_boxes(out["masks"])).abs().max() <= 1
            assert ((out["boxes"][:, 2:] - out["boxes"][:, :2]) >= 1).all()


def test_augmentation_drops_objects_a_zoom_crops_away_and_is_seeded():
    data = generate_scenes(40, image_size=40, seed=1, max_objects=3)
    zoom = BoxAugment(scale=(2.0, 2.0))  # a quarter of each image stays in view
    before = sum(len(t["labels"]) for t in data.targets)
    torch.manual_seed(0)
    after = [augment_one(image, target, zoom)[1] for image, target in zip(data.images,
                                                                          data.targets)]
    assert sum(len(t["labels"]) for t in after) < before
    torch.manual_seed(0)
    again = [augment_one(image, target, zoom)[1] for image, target in zip(data.images,
                                                                          data.targets)]
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(after, again))


def test_a_flip_mirrors_boxes_without_masks():
    image = torch.zeros(3, 30, 40, dtype=torch.uint8)
    target = {"boxes": torch.tensor([[4.0, 3, 14, 20]]), "labels": torch.tensor([5])}
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        out_image, out = augment_one(image, target, BoxAugment(flip=True))
        assert "masks" not in out and out["labels"].tolist() == [5]
        seen.add(tuple(out["boxes"][0].tolist()))
    assert seen == {(4.0, 3.0, 14.0, 20.0), (26.0, 3.0, 36.0, 20.0)}
    assert augment_one(image, target, box_preset("none"))[1] is target


def test_an_image_without_objects_stays_a_negative_through_augmentation():
    image = torch.full((3, 24, 32), 90, dtype=torch.uint8)
    target = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
              "masks": torch.zeros((0, 24, 32), dtype=torch.uint8)}
    torch.manual_seed(3)
    out_image, out = augment_one(image, target, box_preset("strong"))
    assert out_image.shape == image.shape
    assert out["boxes"].shape == (0, 4) and out["masks"].shape == (0, 24, 32)
    assert out["labels"].dtype == torch.int64 and out["masks"].dtype == torch.uint8


def test_a_coco_folder_trains_lists_what_it_skipped_and_predicts_coco_results(coco_set, tmp_path,
                                                                             capsys):
    from pycocotools.coco import COCO

    root, _, broken = coco_set
    run = tmp_path / "run"
    assert main(["train", "--task", "detect", "--model", "fcos", "--model-kwargs",
                 "backbone=resnet18", "--dataset", f"coco:{root}", "--epochs", "1",
                 "--batch-size", "2", "--out", str(run), "--json"]) == 0
    assert "test_map50" in json.loads(capsys.readouterr().out)
    skipped = (run / "skipped.txt").read_text()
    assert all(key in skipped and reason in skipped for key, reason in broken.items())

    files = [str(root / "images" / name) for name in ("a.png", "sub/b.png")]
    assert main(["predict", str(run), *files, "--score-threshold", "0", "--format", "coco",
                 "--out-dir", str(tmp_path / "out"), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["coco_results"]
    assert "2 of 2 image ids come from its annotations" in written["ids"]
    assert isinstance(json.loads(Path(written["file"]).read_text()), list)

    # what a trained model would find (one epoch finds nothing yet): the folder's own ids,
    # and masks that pycocotools reads back as they were
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[6:16, 4:12] = True
    found = {"boxes": torch.tensor([[4.0, 6.0, 12.0, 16.0]]), "labels": torch.tensor([2]),
             "scores": torch.tensor([0.9]), "masks": mask[None]}
    written = coco_results([(files[1], found), (files[0], found)], f"coco:{root}", tmp_path)
    loaded = COCO(str(root / "annotations.json")).loadRes(written["file"])
    first, second = loaded.loadAnns(loaded.getAnnIds())
    assert (first["image_id"], second["image_id"]) == (2, 1)  # b.png's and a.png's ids
    assert first["category_id"] == 7 and first["bbox"] == [4.0, 6.0, 8.0, 10.0]  # cat: id 7
    assert (loaded.annToMask(first) == mask.numpy()).all()
    # a file the annotations do not list: the number in its name, and the result says so
    written = coco_results([(str(tmp_path / "000042.png"), found)], f"coco:{root}", tmp_path)
    assert "0 of 1 image ids come from its annotations" in written["ids"]
    assert json.loads(Path(written["file"]).read_text())[0]["image_id"] == 42


def test_predict_format_coco_on_a_classification_run_is_one_sentence(tmp_path, capsys):
    run = tmp_path / "clf"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--limit-batches", "1",
                 "--out", str(run)]) == 0
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    capsys.readouterr()
    assert main(["predict", str(run), str(image), "--format", "coco"]) == 2
    assert "--format coco is for detect and instance runs" in capsys.readouterr().err
