"""masks:PATH: the user's segmentation set (images/, masks/ of class-index PNGs, classes.txt),
with bad pairs among good ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.mask_folder import mask_folder
from cnnlab.errors import UserError
from cnnlab.tasks.segment import IGNORE, Segment, confusion

CLASSES = ["background", "circle", "square"]
SIZE = 32


def _scene(seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image with a bright square on dark noise, and its class-index mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    label = 1 + seed % 2
    top, left = rng.integers(2, size // 2, 2)
    mask[top:top + size // 3, left:left + size // 3] = label
    image[mask > 0] = (200, 40 + 100 * label, 90)
    return image, mask


def _palette_png(path: Path, mask: np.ndarray) -> None:
    """A VOC-style 'P' PNG: the values are the class indices, the palette only colours them."""
    img = Image.fromarray(mask, mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 - 3) * 3
    palette[IGNORE * 3:IGNORE * 3 + 3] = [224, 224, 192]  # VOC's outline colour
    img.putpalette(palette)
    img.save(path)


@pytest.fixture
def mask_set(tmp_path):
    """10 good pairs (PNG and JPEG images, 'L' and 'P' masks, one grey image, one 40x40 pair,
    one mask almost all 255) and one of each kind of bad pair; returns (root, masks by image
    name, {file name: part of its reason})."""
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n\n")  # trailing blank lines: fine
    truth = {}
    for k in range(10):
        image, mask = _scene(k, 40 if k == 9 else SIZE)
        name = f"img{k}"
        if k == 8:  # all ignored except one pixel of class 1
            mask = np.full_like(mask, IGNORE)
            mask[5, 7] = 1
        if k % 3 == 0:
            Image.fromarray(image).save(root / "images" / f"{name}.jpg", quality=95)
        elif k == 4:
            Image.fromarray(image[..., 0]).save(root / "images" / f"{name}.png")  # grey
        else:
            Image.fromarray(image).save(root / "images" / f"{name}.png")
        if k in (1, 8):
            _palette_png(root / "masks" / f"{name}.png", mask)
        else:
            Image.fromarray(mask, mode="L").save(root / "masks" / f"{name}.png")
        truth[name] = mask
    image, mask = _scene(20)
    bad = {}
    Image.fromarray(image).save(root / "images" / "other_size.png")
    Image.fromarray(mask[:, :30]).save(root / "masks" / "other_size.png")
    bad["other_size.png"] = "a mask has its image's size"
    Image.fromarray(image).save(root / "images" / "no_mask.jpg")
    bad["no_mask.jpg"] = "no mask for this image"
    Image.fromarray(mask).save(root / "masks" / "no_image.png")
    bad["no_image.png"] = "no image of the same name"
    Image.fromarray(image).save(root / "images" / "out_of_range.png")
    Image.fromarray(np.where(mask > 0, 7, 0).astype(np.uint8)).save(
        root / "masks" / "out_of_range.png")
    bad["out_of_range.png"] = "holds class value(s) 7, but classes.txt names only 3"
    Image.fromarray(image).save(root / "images" / "rgb_mask.png")
    Image.fromarray(np.stack([mask] * 3, axis=-1)).save(root / "masks" / "rgb_mask.png")
    bad["rgb_mask.png"] = "an RGB mask; masks hold class indices (a grey or palette PNG)"
    (root / "images" / "broken.jpg").write_bytes(b"not really a JPEG")
    Image.fromarray(mask).save(root / "masks" / "broken.png")
    bad["broken.jpg"] = "not an image file PIL can read"
    Image.fromarray(mask).save(root / "masks" / "jpeg_mask.jpg")
    bad["jpeg_mask.jpg"] = "not a PNG"
    (root / "images" / ".DS_Store").write_bytes(b"\0\1")  # hidden files are not data
    return root, truth, bad


def test_pairs_load_with_their_class_indices_at_one_size(mask_set):
    root, truth, _ = mask_set
    data = mask_folder(root)
    assert data.mask_classes == CLASSES and len(data.images) == len(truth)
    assert data.images.shape == (10, 3, SIZE, SIZE) and data.images.dtype == torch.uint8
    assert data.class_masks.shape == (10, SIZE, SIZE) and data.class_masks.dtype == torch.uint8
    for k, name in enumerate(sorted(truth)):  # good pairs keep file order
        if name != "img9":  # the one 40x40 pair is resized to the common 32x32
            assert np.array_equal(data.class_masks[k].numpy(), truth[name]), name
    # the palette mask (img1) reads as its indices, not as its colours' brightness
    assert set(data.class_masks[1].unique().tolist()) == {0, 2}
    resized = data.class_masks[9]
    assert set(resized.unique().tolist()) <= {0, 2}  # nearest neighbour: no blended classes
    assert abs(int((resized > 0).sum()) - int((truth["img9"] > 0).sum() * (32 / 40) ** 2)) < 20
    # split labels: each pair's most frequent class other than background
    assert data.labels.tolist() == [1 + k % 2 if k != 8 else 1 for k in range(10)]

    splits = load_dataset(f"masks:{root}")
    assert splits.mask_classes == CLASSES
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10
    targets = Segment().targets(splits)
    assert targets.classes == CLASSES
    assert targets.train.labels.shape == (len(splits.train), SIZE, SIZE)


def test_every_bad_pair_is_left_out_with_its_reason(mask_set):
    root, _, bad = mask_set
    problems = load_dataset(f"masks:{root}").problems
    found = {Path(file).name: reason for file, reason in problems}
    assert found.keys() == bad.keys()
    for name, reason in bad.items():
        assert reason in found[name], (name, found[name])


def test_missing_classes_txt_is_one_sentence(mask_set, capsys):
    root, _, _ = mask_set
    (root / "classes.txt").unlink()
    with pytest.raises(UserError, match="has no classes.txt; write one there with one class name "
                                        "per line"):
        mask_folder(root)
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", f"masks:{root}",
                 "--out", str(root / "run")]) == 2
    err = capsys.readouterr().err
    assert "classes.txt" in err and "Traceback" not in err


@pytest.mark.parametrize("change, message", [
    (lambda root: (root / "masks").rename(root / "labels"), "has no masks/ folder"),
    (lambda root: (root / "classes.txt").write_text("background\n\nsquare\n"), "line 2 of"),
    (lambda root: [p.unlink() for p in (root / "masks").glob("img*")], "usable image and mask"),
])
def test_a_set_that_cannot_be_used_is_a_clear_error(mask_set, change, message):
    root, _, _ = mask_set
    change(root)
    with pytest.raises(UserError, match=message):
        mask_folder(root)


def test_ignored_pixels_count_nowhere(mask_set):
    root, truth, _ = mask_set
    data = mask_folder(root)
    mask = data.class_masks[sorted(truth).index("img8")]
    assert int((mask != IGNORE).sum()) == 1
    masks = mask[None]
    assert int(confusion(torch.zeros_like(masks, dtype=torch.long), masks, 3).sum()) == 1
    logits = torch.randn(1, 3, SIZE, SIZE, requires_grad=True)
    loss, _ = Segment().loss(logits, masks)
    loss.backward()
    assert torch.isfinite(loss)
    assert int((logits.grad.abs().sum(dim=1) > 0).sum()) == 1  # only that pixel teaches


def test_training_on_a_mask_folder_writes_skipped_txt(mask_set, tmp_path, capsys):
    root, _, bad = mask_set
    out = tmp_path / "run"
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", f"masks:{root}",
                 "--epochs", "1", "--model-kwargs", "width=4", "depth=2", "--batch-size", "4",
                 "--out", str(out), "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["test_miou"] <= 1
    lines = (out / "skipped.txt").read_text().splitlines()
    found = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in lines}
    assert found.keys() == bad.keys()
    assert all(reason in found[name] for name, reason in bad.items())
    assert main(["evaluate", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["class"] for c in report["per_class"]] == CLASSES


def test_bad_files_fail_stops_at_the_first_bad_pair(mask_set, tmp_path, capsys):
    root, _, _ = mask_set
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", f"masks:{root}",
                 "--epochs", "1", "--model-kwargs", "width=4", "depth=2", "--bad-files", "fail",
                 "--out", str(tmp_path / "run"), "--workers", "0"]) == 2
    assert "use --bad-files skip" in capsys.readouterr().err
