"""flickr8k:PATH and coco-captions:PATH: tiny sets written in the exact layouts of the
releases, with what must be skipped and reported."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_dataset
from cnnlab.data.caption_files import SIDE, coco_captions, flickr8k
from cnnlab.errors import UserError


def _jpeg(path, seed, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _flickr(root, names_by_part, broken=()):
    lines = []
    for part, names in names_by_part.items():
        for i, name in enumerate(names):
            if name in broken:
                (root / "Flicker8k_Dataset").mkdir(parents=True, exist_ok=True)
                (root / "Flicker8k_Dataset" / name).write_bytes(b"not a jpeg")
            else:
                _jpeg(root / "Flicker8k_Dataset" / name, hash(name) % 1000)
            lines += [f"{name}#{k}\tA dog number {i} runs on the grass ." for k in range(5)]
        (root / f"Flickr_8k.{part}Images.txt").write_text("\n".join(names) + "\n")
    lines.append("a line without a tab or hash")
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")


def test_flickr8k_layout_loads_with_its_splits_and_reports_problems(tmp_path):
    names = {"train": [f"{i}_a.jpg" for i in range(6)], "dev": ["7_b.jpg", "8_b.jpg"],
             "test": ["9_c.jpg", "10_c.jpg", "11_c.jpg"]}
    _flickr(tmp_path, names, broken={"5_a.jpg"})
    train, test = flickr8k(tmp_path)
    assert train.images.shape == (7, 3, SIDE, SIDE) and len(test.targets) == 3
    assert all(len(t["captions"]) == 5 for t in train.targets)
    assert train.targets[0]["captions"][0] == "A dog number 0 runs on the grass ."
    reasons = " ".join(f"{f} {r}" for f, r in train.problems)
    assert "5_a.jpg" in reasons and "not <name>#<n><TAB>sentence" in reasons


def test_flickr8k_text_files_may_sit_in_their_own_folder(tmp_path):
    names = {"train": ["1.jpg", "2.jpg", "3.jpg"], "dev": [], "test": ["4.jpg", "5.jpg", "6.jpg"]}
    _flickr(tmp_path / "text", names)
    (tmp_path / "text").rename(tmp_path / "Flickr8k_text")
    (tmp_path / "Flickr8k_text" / "Flicker8k_Dataset").rename(tmp_path / "Flicker8k_Dataset")
    train, _ = flickr8k(tmp_path)
    assert len(train.targets) == 3


def test_flickr8k_through_the_catalogue_and_the_caption_task(tmp_path):
    names = {"train": [f"{i}.jpg" for i in range(12)], "dev": [],
             "test": ["a.jpg", "b.jpg", "c.jpg"]}
    _flickr(tmp_path, names)
    from cnnlab.tasks import make_task
    splits = make_task("caption").targets(load_dataset(f"flickr8k:{tmp_path}"))
    assert len(splits.test) == 3 and len(splits.train) + len(splits.val) == 12
    assert splits.classes[4:7] == ["a", "dog", "grass"] and splits.augment == "none"
    assert splits.train.labels.shape[1] == 5 * 10  # five references of <start> 8 words <end>


def test_a_folder_without_the_flickr8k_files_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="has no Flickr8k.token.txt"):
        flickr8k(tmp_path)


def _coco(root, part, count, start=0, bad_annotation=False):
    images, annotations = [], []
    for i in range(start, start + count):
        _jpeg(root / part / f"{i:06d}.jpg", i)
        images.append({"id": i, "file_name": f"{i:06d}.jpg", "width": 40, "height": 30})
        annotations += [{"id": 10 * i + k, "image_id": i, "caption": f"A cat sits number {k}"}
                        for k in range(5 + i % 3)]  # COCO has five to seven per image
    images.append({"id": 999, "file_name": "missing.jpg"})
    annotations.append({"id": 1, "image_id": 999, "caption": "a picture nobody has"})
    if bad_annotation:
        annotations.append({"id": 2, "image_id": 12345, "caption": "no such image"})
    (root / f"captions_{part}.json").write_text(json.dumps(
        {"images": images, "annotations": annotations}))


def test_coco_captions_with_train_and_val_parts(tmp_path):
    _coco(tmp_path, "train2017", 5, bad_annotation=True)
    _coco(tmp_path, "val2017", 3, start=100)
    train, test = coco_captions(tmp_path)
    assert len(train.targets) == 5 and len(test.targets) == 3
    assert sorted(len(t["captions"]) for t in train.targets) == [5, 5, 6, 6, 7]
    reasons = " ".join(r for _, r in train.problems)
    assert "names no image entry" in reasons
    assert any("missing.jpg" in f for f, _ in train.problems + test.problems)


def test_coco_captions_of_one_part_are_split_by_the_catalogue(tmp_path):
    _coco(tmp_path, "images", 10)
    splits = load_dataset(f"coco-captions:{tmp_path}")
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10
    assert any("missing.jpg" in f for f, _ in splits.problems)


def test_coco_captions_mistakes_are_one_sentence(tmp_path):
    with pytest.raises(UserError, match="has no captions_"):
        coco_captions(tmp_path)
    (tmp_path / "captions_val.json").write_text("{not json")
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match="not valid JSON"):
        coco_captions(tmp_path)
