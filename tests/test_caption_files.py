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


# --- --download: the archives in their exact layout, already in DATA_DIR (no network) -------

def _zip(archive, folder, extra=()):
    """folder's files zipped with paths relative to folder, as the release's archives are."""
    import zipfile
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())
        for name in extra:
            zipped.writestr(name, b"resource fork")


def test_flickr8k_download_extracts_the_release_archives_and_keeps_files_already_there(
        tmp_path):
    names = {"train": [f"{i}.jpg" for i in range(6)], "dev": ["d.jpg"], "test": ["t1.jpg",
                                                                               "t2.jpg", "t3.jpg"]}
    _flickr(tmp_path / "src", names)
    images, text = tmp_path / "images", tmp_path / "text"
    images.mkdir()
    (tmp_path / "src" / "Flicker8k_Dataset").rename(images / "Flicker8k_Dataset")
    (tmp_path / "src").rename(text)
    data = tmp_path / "data"
    # Flickr8k_Dataset.zip holds Flicker8k_Dataset/ (and __MACOSX/); Flickr8k_text.zip the files
    _zip(data / "flickr8k" / "Flickr8k_Dataset.zip", images,
         extra=["__MACOSX/Flicker8k_Dataset/._0.jpg"])
    _zip(data / "flickr8k" / "Flickr8k_text.zip", text)
    mine = data / "flickr8k" / "Flickr_8k.testImages.txt"
    mine.write_text("t1.jpg\nt2.jpg\nt3.jpg\n")  # the user's own copy: never replaced
    splits = load_dataset("flickr8k", str(data), download=True)
    assert len(splits.test) == 3 and len(splits.train) + len(splits.val) == 7
    assert mine.read_text() == "t1.jpg\nt2.jpg\nt3.jpg\n"
    assert not (data / "flickr8k" / "__MACOSX").exists()


def test_coco_download_uses_the_validation_part_the_archives_bring(tmp_path):
    import shutil
    annotations, images = tmp_path / "annotations", tmp_path / "images"
    _coco(images, "val2017", 10)
    _coco(images, "train2017", 2)  # its listing comes with the annotations; its images do not
    shutil.rmtree(images / "train2017")
    (annotations / "annotations").mkdir(parents=True)
    for part in ("val2017", "train2017"):
        (images / f"captions_{part}.json").rename(
            annotations / "annotations" / f"captions_{part}.json")
    data = tmp_path / "data"
    _zip(data / "coco" / "annotations_trainval2017.zip", annotations)  # annotations/*.json
    _zip(data / "coco" / "val2017.zip", images)                         # val2017/*.jpg
    splits = load_dataset("coco-captions", str(data), download=True)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10


def test_without_the_files_or_offline_a_download_set_is_one_sentence(tmp_path, monkeypatch):
    from cnnlab.data import caption_files
    with pytest.raises(UserError, match="Flickr8k is missing.*--download"):
        load_dataset("flickr8k", str(tmp_path))
    # nothing listens on port 9 of this machine: the fetch fails as it does offline
    monkeypatch.setattr(caption_files, "FLICKR8K_URLS",
                        ["http://127.0.0.1:9/Flickr8k_Dataset.zip"])
    with pytest.raises(UserError, match="Flickr8k could not be downloaded"):
        load_dataset("flickr8k", str(tmp_path), download=True)
    assert not list((tmp_path / "flickr8k").glob("*.zip"))  # nothing half-fetched kept as one
