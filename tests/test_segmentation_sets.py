"""voc-segmentation and oxford-pets from tiny sets in torchvision's exact layouts; no network."""
from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.segmentation_sets import PET_SIDE, VOC_CLASSES, VOC_SIDE
from cnnlab.errors import UserError
from cnnlab.tasks.segment import IGNORE

PERSON, CAT = VOC_CLASSES.index("person"), VOC_CLASSES.index("cat")
VOC_TRAIN = [f"2007_{k:06d}" for k in range(8)]
VOC_VAL = [f"2008_{k:06d}" for k in range(3)]
PETS_TRAINVAL = [f"{breed}_{k}" for breed in ("Abyssinian", "beagle") for k in range(1, 5)]
PETS_TEST = ["Abyssinian_90", "beagle_90", "beagle_91"]


def _photo(path: Path, seed: int, width: int, height: int, grey: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width) if grey else (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=90)


def _voc_mask(path: Path, label: int, width: int, height: int, top: int | None = None) -> None:
    """A palette PNG as VOC's SegmentationClass: background above row `top`, the object below,
    a 255 outline between (the palette only colours the indices)."""
    top = height // 2 if top is None else top
    mask = np.zeros((height, width), np.uint8)
    mask[top:] = label
    mask[top - 1] = IGNORE
    img = Image.fromarray(mask, mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0] + [64, 128, 128] * 254)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _trimap(path: Path, width: int, height: int) -> None:
    """Oxford-IIIT Pet's trimap: 2 (background) above, 3 (the border band), 1 (pet) below."""
    trimap = np.full((height, width), 1, np.uint8)
    trimap[:height // 2 - 1] = 2
    trimap[height // 2 - 1] = 3
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(trimap, mode="L").save(path)


@pytest.fixture
def voc(tmp_path):
    """8 train ids (one grey photograph, two sizes) and 3 val ids; train.txt also lists an id
    with no mask and one whose mask holds a value VOC has no class for."""
    base = tmp_path / "VOCdevkit" / "VOC2012"
    for k, name in enumerate(VOC_TRAIN + VOC_VAL):
        width, height = (20, 15) if k % 2 else (24, 18)
        _photo(base / "JPEGImages" / f"{name}.jpg", k, width, height, grey=k == 3)
        _voc_mask(base / "SegmentationClass" / f"{name}.png", PERSON if k % 3 else CAT,
                  width, height)
    _photo(base / "JPEGImages" / "2007_nomask.jpg", 50, 20, 15)
    _photo(base / "JPEGImages" / "2007_badvalue.jpg", 51, 20, 15)
    _voc_mask(base / "SegmentationClass" / "2007_badvalue.png", 30, 20, 15)
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(VOC_TRAIN + ["2007_nomask", "2007_badvalue"]) + "\n")
    (lists / "val.txt").write_text("\n".join(VOC_VAL) + "\n")
    return tmp_path


def write_pets(root: Path) -> Path:
    """The layout torchvision's OxfordIIITPet downloads: 8 trainval and 3 test names (lines of
    name, breed id, species, breed-in-species id), plus a listed name without its image."""
    base = root / "oxford-iiit-pet"
    for k, name in enumerate(PETS_TRAINVAL + PETS_TEST):
        width, height = (20, 15) if k % 2 else (15, 20)
        _photo(base / "images" / f"{name}.jpg", k, width, height)
        _trimap(base / "annotations" / "trimaps" / f"{name}.png", width, height)
    _trimap(base / "annotations" / "trimaps" / "beagle_99.png", 20, 15)

    def line(name: str) -> str:
        breed = 1 if name.startswith("Abyssinian") else 6
        return f"{name} {breed} {1 if breed == 1 else 2} 1"

    (base / "annotations" / "trainval.txt").write_text(
        "\n".join(line(n) for n in PETS_TRAINVAL + ["beagle_99"]) + "\n")
    (base / "annotations" / "test.txt").write_text("\n".join(map(line, PETS_TEST)) + "\n")
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Constructing either torchvision dataset (which could download) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be touched")
    monkeypatch.setattr(datasets, "VOCSegmentation", refuse)
    monkeypatch.setattr(datasets, "OxfordIIITPet", refuse)


def test_voc_loads_official_splits_with_class_indices_at_the_working_size(voc, no_network):
    splits = load_dataset("voc-segmentation", data_dir=str(voc))
    assert splits.mask_classes == VOC_CLASSES
    assert len(splits.test) == len(VOC_VAL)  # the official val split tests
    assert len(splits.train) + len(splits.val) == len(VOC_TRAIN) and len(splits.val) >= 1
    for part in (splits.train, splits.val, splits.test):
        assert part.images.shape[1:] == (3, VOC_SIDE, VOC_SIDE)  # the grey one repeated
        assert part.images.dtype == torch.uint8 and part.masks.dtype == torch.uint8
        assert part.masks.shape == (len(part), VOC_SIDE, VOC_SIDE)
        for mask in part.masks:  # nearest neighbour: background, the object, the outline only
            values = set(mask.unique().tolist())
            assert 0 in values and IGNORE in values and values - {0, IGNORE} in ({PERSON}, {CAT})
            assert int(mask[0, 0]) == 0 and int(mask[-1, -1]) in (PERSON, CAT)
    assert splits.augment == "flip-crop"


def test_voc_ids_without_a_usable_mask_are_left_out_with_their_reason(voc, no_network):
    found = {Path(file).name: reason for file, reason
             in load_dataset("voc-segmentation", data_dir=str(voc)).problems}
    assert found.keys() == {"2007_nomask.jpg", "2007_badvalue.jpg"}
    assert "2007_nomask.png does not exist" in found["2007_nomask.jpg"]
    assert ("holds class value(s) 30, but PASCAL VOC 2012 segmentation names only 21 classes"
            in found["2007_badvalue.jpg"])


def test_pets_trimaps_become_background_pet_and_ignore(tmp_path, no_network):
    splits = load_dataset("oxford-pets", data_dir=str(write_pets(tmp_path)))
    assert splits.mask_classes == ["background", "pet"]
    assert len(splits.test) == len(PETS_TEST)
    assert len(splits.train) + len(splits.val) == len(PETS_TRAINVAL)
    for part in (splits.train, splits.val, splits.test):
        assert part.images.shape[1:] == (3, PET_SIDE, PET_SIDE)
        assert part.masks.shape == (len(part), PET_SIDE, PET_SIDE)
        for mask in part.masks:
            assert set(mask[0].tolist()) == {0}   # trimap 2: background
            assert set(mask[-1].tolist()) == {1}  # trimap 1: pet
            assert set(mask.unique().tolist()) == {0, 1, IGNORE}  # trimap 3: ignored
    found = {Path(file).name: reason for file, reason in splits.problems}
    assert found.keys() == {"beagle_99.jpg"} and "does not exist" in found["beagle_99.jpg"]


def test_a_trimap_value_outside_1_2_3_leaves_its_pair_out(tmp_path, no_network):
    root = write_pets(tmp_path)
    Image.fromarray(np.full((15, 20), 4, np.uint8)).save(
        root / "oxford-iiit-pet" / "annotations" / "trimaps" / "beagle_90.png")
    splits = load_dataset("oxford-pets", data_dir=str(root))
    found = {Path(file).name: reason for file, reason in splits.problems}
    assert "holds value(s) 4; this set's masks hold only 1, 2, 3" in found["beagle_90.jpg"]
    assert len(splits.test) == len(PETS_TEST) - 1


@pytest.mark.parametrize("name, folder", [("voc-segmentation", "VOCdevkit"),
                                          ("oxford-pets", "oxford-iiit-pet")])
def test_absent_files_without_download_name_the_folder_and_download(tmp_path, no_network,
                                                                     name, folder):
    with pytest.raises(UserError, match=r"is missing: put .*--download") as caught:
        load_dataset(name, data_dir=str(tmp_path / "empty"))
    assert str(tmp_path / "empty" / folder) in str(caught.value)


def test_a_failed_download_is_one_sentence_with_its_reason(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(datasets, "VOCSegmentation", offline)
    with pytest.raises(UserError, match=r"could not be downloaded \(URLError: .*no route to host"
                                        r".*--download"):
        load_dataset("voc-segmentation", data_dir=str(tmp_path), download=True)


def test_download_asks_torchvision_for_the_trainval_trimaps(tmp_path, monkeypatch):
    asked = []

    def fetch(**kwargs):  # stands in for the download: lays the files out where it would
        asked.append(kwargs)
        write_pets(Path(kwargs["root"]))
    monkeypatch.setattr(datasets, "OxfordIIITPet", fetch)
    splits = load_dataset("oxford-pets", data_dir=str(tmp_path), download=True)
    assert asked == [{"root": str(tmp_path), "split": "trainval",
                      "target_types": "segmentation", "download": True}]
    assert len(splits.test) == len(PETS_TEST)
    load_dataset("oxford-pets", data_dir=str(tmp_path), download=True)
    assert len(asked) == 1  # files in place: nothing is fetched again


def test_training_unet_on_oxford_pets_reports_test_miou(tmp_path, no_network, capsys):
    root, out = write_pets(tmp_path / "data"), tmp_path / "run"
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", "oxford-pets",
                 "--data-dir", str(root), "--epochs", "1", "--model-kwargs", "width=4",
                 "depth=2", "--batch-size", "4", "--out", str(out), "--workers", "0",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["test_miou"] <= 1
    assert "beagle_99.jpg" in (out / "skipped.txt").read_text()
