"""The user's own images: folder:PATH and csv:PATH, with bad files among good ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.pipeline import build_pipeline

from bad_images import write_bad_files, write_odd_modes


def _write_digit_folder(root: Path, per_class: int = 12) -> int:
    """Digits 0, 1, 2 as PNGs of mixed sizes in class folders; returns the number written."""
    digits = load_dataset("digits").train
    written = 0
    for label in (0, 1, 2):
        (root / f"digit{label}").mkdir(parents=True, exist_ok=True)
        for k, index in enumerate((digits.labels == label).nonzero()[:per_class, 0].tolist()):
            size = 16 + 8 * (k % 3)
            Image.fromarray(digits.images[index, 0].numpy()).resize((size, size)).save(
                root / f"digit{label}" / f"{k}.png")
            written += 1
    return written


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "images"
    good = _write_digit_folder(root)
    good += len(write_odd_modes(root / "digit1" / "odd"))
    reasons = write_bad_files(root / "digit2")
    (root / ".DS_Store").write_bytes(b"\0\1")  # hidden files are not data
    return root, good, reasons


def test_folder_uses_every_good_file_and_reports_every_bad_one(messy_folder):
    root, good, reasons = messy_folder
    splits = load_dataset(f"folder:{root}")
    assert splits.classes == ["digit0", "digit1", "digit2"]
    pipeline = build_pipeline(splits, 1, (28, 28), batch_size=8, device=torch.device("cpu"),
                              workers=0)
    assert sum(pipeline.sizes.values()) == good
    assert {Path(f).name: r for f, r in pipeline.skipped}.keys() == reasons.keys()
    for file, reason in pipeline.skipped:
        assert reasons[Path(file).name] in reason


def test_training_on_a_messy_folder_finishes_and_writes_skipped_txt(messy_folder, tmp_path, capsys):
    root, _, reasons = messy_folder
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{root}", "--epochs", "1", "--out", str(out),
                 "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    lines = (out / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in lines) == sorted(reasons)
    assert json.loads((out / "config.json").read_text())["train"]["augment"] == "flip-crop"
    # The run is usable like any other: evaluate its test split, predict an odd-mode file.
    assert main(["evaluate", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] + len(report["skipped_files"]) == len(load_dataset(f"folder:{root}").test)
    assert main(["predict", str(out), str(root / "digit1" / "odd" / "rgba.png"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    assert top[0]["class"] in ("digit0", "digit1", "digit2")


def test_bad_files_fail_stops_at_the_first_bad_file(messy_folder, tmp_path, capsys):
    root, _, _ = messy_folder
    assert main(["train", "--dataset", f"folder:{root}", "--epochs", "1", "--bad-files", "fail",
                 "--out", str(tmp_path / "run"), "--workers", "0"]) == 2
    assert "use --bad-files skip" in capsys.readouterr().err


def test_csv_rows_are_the_lectures_custom_dataset(tmp_path):
    root = tmp_path / "images"
    _write_digit_folder(root, per_class=6)
    write_bad_files(root / "junk")
    rows = ["path,label"]
    rows += [f"images/{p.parent.name}/{p.name},{p.parent.name[-1]}" for p in sorted(root.rglob("*.png"))
             if p.parent.name.startswith("digit")]
    rows += ["images/junk/notes.jpg,1", "images/nowhere.png,2", "images/digit0/0.png,"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    splits = load_dataset(f"csv:{tmp_path / 'labels.csv'}")
    assert splits.classes == ["0", "1", "2"]
    pipeline = build_pipeline(splits, 1, (28, 28), batch_size=8, device=torch.device("cpu"),
                              workers=0)
    assert sum(pipeline.sizes.values()) == 18
    reasons = " | ".join(r for _, r in pipeline.skipped)
    assert "not an image" in reasons and "does not exist" in reasons and "needs a path and a label" in reasons


@pytest.mark.parametrize("dataset, message", [
    ("folder:/no/such/folder", "does not exist"),
    ("csv:/no/such.csv", "does not exist"),
    ("folder:", "needs a path"),
])
def test_missing_user_data_is_a_clear_error(dataset, message, capsys):
    assert main(["train", "--dataset", dataset, "--epochs", "1"]) == 2
    assert message in capsys.readouterr().err


def test_streaming_gives_the_same_batches_as_memory(messy_folder):
    root, _, _ = messy_folder
    splits = load_dataset(f"folder:{root}")
    make = lambda loading: build_pipeline(splits, 1, (20, 20), batch_size=5,  # noqa: E731
                                          device=torch.device("cpu"), loading=loading, workers=0)
    memory, stream = make("memory"), make("stream")
    assert not stream.in_memory and memory.in_memory
    assert memory.preprocess == stream.preprocess  # small sets: the sample is the whole split
    for (a, la), (b, lb) in zip(memory.batches["test"], stream.batches["test"]):
        assert torch.equal(la, lb) and torch.allclose(a, b, atol=1e-6)


def test_a_folder_of_small_images_trains_imagenet_models_through_the_small_stem(messy_folder,
                                                                               tmp_path):
    root, _, _ = messy_folder
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{root}", "--model", "resnet18", "--epochs", "1",
                 "--limit-batches", "1", "--workers", "0", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kwargs"]["stem"] == "small" and config["preprocess"]["size"][0] <= 64


@pytest.mark.parametrize("count", [1, 2])
def test_a_folder_too_small_to_hold_images_out_is_one_sentence(tmp_path, capsys, count):
    for i in range(count):
        (tmp_path / "data" / "cat").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "data" / "cat" / f"{i}.png")
    assert main(["train", "--dataset", f"folder:{tmp_path / 'data'}", "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 2
    assert "it needs at least 3" in capsys.readouterr().err
