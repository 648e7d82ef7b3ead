"""The data set catalogue: every offline set loads with three disjoint, stratified splits."""
from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.catalog import CATALOG

OFFLINE = ["digits", "lfw-faces", "shapes"]
EXPECTED = {"digits": (1797, 10, (1, 8, 8)), "lfw-faces": (200, 2, (1, 25, 25)),
            "shapes": (4000, 3, (3, 32, 32))}


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_sets_load_with_three_stratified_splits(name):
    splits = load_dataset(name)
    total, classes, shape = EXPECTED[name]
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(p) for p in parts) == total and len(splits.classes) == classes
    assert all(p.images.dtype == torch.uint8 and tuple(p.images.shape[1:]) == shape for p in parts)
    whole = torch.bincount(torch.cat([p.labels for p in parts])).double() / total
    for part in parts:  # each split keeps the class balance of the whole
        share = torch.bincount(part.labels, minlength=classes).double() / len(part)
        assert (share - whole).abs().max() < 0.05
    # Disjoint: no image is in two splits (compared by their bytes).
    seen = [{bytes(img.numpy()) for img in p.images} for p in parts]
    assert not (seen[0] & seen[2]) and not (seen[1] & seen[2]) and not (seen[0] & seen[1])


def test_the_split_does_not_depend_on_the_training_seed():
    assert torch.equal(load_dataset("digits").test.labels, load_dataset("digits").test.labels)


# shapes: 4 epochs of the lecture CNN, 3 s on a quiet 2-core CPU and 20-70 s on a busy one.
@pytest.mark.parametrize("name", ["lfw-faces", pytest.param("shapes", marks=pytest.mark.slow)])
def test_training_works_on_every_offline_set(name, tmp_path, capsys):
    # 4 epochs: after 2 (mostly one-cycle warm-up) shapes sits at chance, and whether it is
    # just above or below depends on rounding (the memory layout the fast path picks).
    assert main(["train", "--dataset", name, "--model", "lecture_cnn", "--epochs", "4",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] > 1 / len(load_dataset(name).classes)


def test_datasets_lists_every_catalogue_entry(capsys):
    assert main(["datasets", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)["datasets"]]
    assert set(CATALOG) <= set(names) and {"folder:PATH", "csv:PATH"} <= set(names)


def test_stats_are_computed_on_the_training_split_and_cached(tmp_path, capsys):
    argv = ["datasets", "stats", "digits", "--data-dir", str(tmp_path), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    train = load_dataset("digits").train.images.double() / 255
    assert first["mean"][0] == pytest.approx(train.mean().item())
    assert first["std"][0] == pytest.approx(train.std().item())
    assert first["images"] == len(train) and not first["cached"]
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] and second["mean"] == first["mean"]


def test_a_damaged_stats_cache_is_rebuilt_saying_so(tmp_path, capsys, caplog):
    (tmp_path / ".cnnlab-stats.json").write_bytes(b'{"digits": {"fingerpr')  # cut short
    argv = ["datasets", "stats", "digits", "--data-dir", str(tmp_path), "--json"]
    assert main(argv) == 0
    assert "damaged" in caplog.text and not json.loads(capsys.readouterr().out)["cached"]
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["cached"]


def test_stats_of_a_folder_where_no_image_decodes_is_one_sentence(tmp_path, capsys):
    for label in ("cat", "dog"):
        for i in range(6):
            (tmp_path / "imgs" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "imgs" / label / f"{i}.png").write_bytes(b"not a png")
    assert main(["datasets", "stats", f"folder:{tmp_path / 'imgs'}",
                 "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "could be decoded" in err and "Traceback" not in err and len(err.splitlines()) == 1
