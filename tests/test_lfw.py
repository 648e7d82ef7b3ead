"""LFW as --task embed reads it: tiny files written in the exact layout torchvision's LFWPeople
and LFWPairs read (nothing is downloaded), View 1's people split, View 2's pairs scored by
the 10-fold protocol, unreadable faces left out and named, a missing folder one sentence."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.lfw import FOLDER, IMAGES, SIDE
from cnnlab.errors import UserError

TRAIN_PEOPLE = {"Ann_A": 3, "Bob_B": 3, "Cid_C": 2, "Dee_D": 2}
TEST_PEOPLE = {"Eve_E": 2, "Fay_F": 2}
PER_FOLD = 1  # pairs.txt: "10\t1": one matched and one unmatched pair in each of 10 folds


def _face(path, seed: int):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(250, 250, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def _lfw(tmp_path):
    """DATA_DIR/lfw-py as torchvision lays it out; returns DATA_DIR."""
    root = tmp_path / FOLDER
    people = {**TRAIN_PEOPLE, **TEST_PEOPLE}
    for i, (name, count) in enumerate(people.items()):
        (root / IMAGES / name).mkdir(parents=True)
        for n in range(1, count + 1):
            _face(root / IMAGES / name / f"{name}_{n:04d}.jpg", 10 * i + n)
    (root / "lfw-names.txt").write_text("".join(f"{n}\t{c}\n" for n, c in people.items()))
    for file, group in (("peopleDevTrain.txt", TRAIN_PEOPLE), ("peopleDevTest.txt", TEST_PEOPLE)):
        listed = "".join(f"{n}\t{c}\n" for n, c in group.items())
        (root / file).write_text(f"{len(group)}\n{listed}")
    lines = [f"{10}\t{PER_FOLD}"]
    names = list(people)
    for fold in range(10):
        same = names[fold % len(names)]
        lines.append(f"{same}\t1\t2")
        a, b = names[fold % len(names)], names[(fold + 1) % len(names)]
        lines.append(f"{a}\t1\t{b}\t2")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_lfw_people_tests_on_people_never_trained_on(tmp_path):
    splits = load_dataset("lfw-people", str(_lfw(tmp_path)))
    named = lambda split: {splits.classes[i] for i in split.labels.tolist()}  # noqa: E731
    assert named(splits.test) == set(TEST_PEOPLE)
    assert named(splits.train) | named(splits.val) <= set(TRAIN_PEOPLE)
    assert len(splits.train) + len(splits.val) == sum(TRAIN_PEOPLE.values())
    assert tuple(splits.test.images.shape[1:]) == (3, SIDE, SIDE)
    assert splits.test.images.dtype == torch.uint8


def test_an_unreadable_face_is_left_out_and_named(tmp_path):
    data = _lfw(tmp_path)
    broken = data / FOLDER / IMAGES / "Ann_A" / "Ann_A_0002.jpg"
    broken.write_bytes(b"not a jpeg")
    splits = load_dataset("lfw-people", str(data))
    assert len(splits.train) + len(splits.val) == sum(TRAIN_PEOPLE.values()) - 1
    assert [file for file, _ in splits.problems] == [str(broken)]
    # the pairs protocol needs every pair whole: there it is one sentence
    with pytest.raises(UserError, match="Ann_A_0002.jpg"):
        load_dataset("lfw-pairs", str(data))


def test_lfw_pairs_puts_each_pair_side_by_side_in_file_order(tmp_path):
    splits = load_dataset("lfw-pairs", str(_lfw(tmp_path)))
    labels = splits.test.labels
    assert len(labels) == 2 * 2 * 10 * PER_FOLD
    same = (labels[0::2] == labels[1::2]).tolist()
    assert same == [True, False] * 10  # pairs.txt: each fold's matched pair, then unmatched
    named = [splits.classes[i] for i in labels[2:6].tolist()]
    assert named == ["Ann_A", "Bob_B", "Bob_B", "Bob_B"]  # fold 0's unmatched, fold 1's matched


@pytest.mark.parametrize("download, says", [(False, "is missing"),
                                            (True, "no longer downloads LFW")])
def test_a_missing_lfw_is_one_sentence_and_nothing_is_fetched(tmp_path, capsys, download, says):
    argv = ["train", "--task", "embed", "--dataset", "lfw-people", "--holdout-classes", "",
            "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv + (["--download"] if download else [])) == 2
    err = capsys.readouterr().err
    assert says in err and str(tmp_path / FOLDER) in err and "Traceback" not in err
    assert not (tmp_path / FOLDER).exists()


def test_the_recipes_held_out_digits_are_refused_on_lfw(tmp_path, capsys):
    argv = ["train", "--task", "embed", "--dataset", "lfw-people", "--data-dir",
            str(_lfw(tmp_path)), "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--holdout-classes ''" in last and last.startswith("cnnlab: error:")


@pytest.mark.slow  # trains
def test_train_and_evaluate_on_lfw_pairs_report_the_ten_fold_protocol(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--dataset", "lfw-pairs", "--holdout-classes", "",
                 "--data-dir", str(_lfw(tmp_path)), "--epochs", "1", "--json", "--quiet",
                 "--out", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_pairs_folds"] == 10
    assert 0.0 <= result["test_pairs_accuracy"] <= 1.0
    assert result["test_pairs_accuracy_std"] >= 0.0
    assert result["test_images"] == 40

    # evaluate scores the same pairs by the same protocol, under the same names less test_
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("pairs_accuracy", "pairs_accuracy_std", "pairs_threshold", "pairs_folds"):
        assert report[key] == pytest.approx(result[f"test_{key}"], abs=1e-5)  # float32 sums
    assert main(["evaluate", str(run)]) == 0
    assert "10-fold protocol: accuracy" in capsys.readouterr().out
    # on another split (View 1's training people) there are no pairs to score
    assert main(["evaluate", str(run), "--split", "val", "--json"]) == 0
    assert "pairs_accuracy" not in json.loads(capsys.readouterr().out)
