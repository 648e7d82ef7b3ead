"""`cnnlab train / evaluate / predict` as a user runs them, including every mistake they can make."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset

CNNLAB = [sys.executable, "-m", "cnnlab"]


def _run(*argv):
    return subprocess.run([*CNNLAB, *argv], capture_output=True, text=True, timeout=300)


def _digit_png(path: Path, index: int, scale: int = 8) -> int:
    """Write test-split digit `index` as a PNG (upscaled like a scan); return its true class."""
    test = load_dataset("digits").test
    pixels = test.images[index, 0].numpy()
    Image.fromarray(pixels).resize((8 * scale, 8 * scale), Image.BICUBIC).save(path)
    return int(test.labels[index])


@pytest.mark.slow  # trains in a subprocess
def test_train_json_prints_one_object_with_the_results(tmp_path):
    done = _run("train", "--epochs", "2", "--out", str(tmp_path / "run"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"run_dir", "test_accuracy", "test_loss", "epochs", "seconds"} <= result.keys()
    assert result["epochs"] == 2 and Path(result["run_dir"], "model.safetensors").is_file()
    assert "epoch   2/2" in done.stderr  # the per-epoch progress lines


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_predict_names_the_right_class_for_png_digits(default_run, tmp_path, capsys):
    files, truth = [], []
    for index in range(10):
        files.append(str(tmp_path / f"digit{index}.png"))
        truth.append(_digit_png(Path(files[-1]), index))
    assert main(["predict", str(default_run.run_dir), *files, "--json", "--top-k", "2"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    named = [p["top"][0]["class"] for p in predictions]
    assert sum(n == str(t) for n, t in zip(named, truth)) >= 9, (named, truth)
    assert all(len(p["top"]) == 2 and p["top"][0]["probability"] >= p["top"][1]["probability"]
               for p in predictions)


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_predict_preprocesses_exactly_as_training_did(default_run, tmp_path, capsys):
    """An 8x8 PNG of a test digit gets the same probabilities as the in-memory test set."""
    from cnnlab.data.memory import TensorBatches
    from cnnlab.engine.loop import evaluate
    from cnnlab.runs.folder import load_run
    from cnnlab.tasks.classify import Classify

    _digit_png(tmp_path / "d.png", 3, scale=1)
    assert main(["predict", str(default_run.run_dir), str(tmp_path / "d.png"), "--json",
                 "--top-k", "10"]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    run = load_run(default_run.run_dir)
    test = load_dataset("digits").test
    expected = evaluate(run.model, TensorBatches(run.spec.preprocess(test.images[3:4]),
                                                 test.labels[3:4], 1), Classify()).probabilities[0]
    for entry in top:
        assert entry["probability"] == pytest.approx(float(expected[int(entry["class"])]), abs=1e-5)


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_predict_reports_bad_files_and_still_predicts_good_ones(default_run, tmp_path, capsys):
    good = tmp_path / "good.png"
    _digit_png(good, 0)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not a picture")
    code = main(["predict", str(default_run.run_dir), str(good), str(not_image),
                 str(tmp_path / "missing.png"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    result = json.loads(out)
    assert [p["file"] for p in result["predictions"]] == [str(good)]
    assert "notes.png is not an image file" in err and "missing.png does not exist" in err


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_evaluate_prints_per_class_metrics_and_a_consistent_confusion_matrix(default_run, capsys):
    assert main(["evaluate", str(default_run.run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == len(load_dataset("digits").test)
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    # the figures training printed for its test split, repeated
    assert report["accuracy"] == pytest.approx(default_run.test_accuracy)
    assert report["loss"] == pytest.approx(default_run.test_loss, abs=1e-5)
    assert [c["class"] for c in report["per_class"]] == [str(d) for d in range(10)]
    assert all(0 <= c["f1"] <= 1 for c in report["per_class"])
    assert Path(default_run.run_dir, "confusion.png").is_file()
    assert main(["evaluate", str(default_run.run_dir)]) == 0
    assert "precision" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nonet"], "unknown model 'nonet'; choose one of:"),
    (["train", "--dataset", "imagenet-22k"], "unknown data set 'imagenet-22k'; choose one of: cifar10"),
    (["train", "--lr", "0"], "--lr must be a positive number"),
    (["train", "--batch-size", "0"], "--batch-size must be a positive whole number"),
    (["train", "--epochs", "0"], "--epochs must be a positive whole number"),
    (["train", "--config", "nowhere.yaml"], "config file nowhere.yaml does not exist"),
    (["train", "--model-kwargs", "colour=red"], "model lenet5 has no option 'colour'"),
    (["train", "--device", "quantum"], "unknown device 'quantum'"),
    (["evaluate", "no-such-run"], "no-such-run does not exist; give the run folder"),
])
def test_user_mistakes_get_one_sentence_and_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_run_folder_without_a_model_is_a_clear_error(tmp_path, short_run, capsys):
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / "config.json").write_text((short_run.run_dir / "config.json").read_text())
    assert main(["predict", str(folder), "x.png"]) == 2
    assert "has no trained model" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess that imports torch
def test_unknown_key_in_config_file_exits_2_in_a_real_process(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 1\nbatchsize: 8\n")
    done = _run("train", "--config", str(config))
    assert done.returncode == 2
    assert "unknown key 'batchsize'" in done.stderr and "Traceback" not in done.stderr


def test_an_existing_run_is_never_overwritten(short_run, capsys):
    assert main(["train", "--out", str(short_run.run_dir), "--epochs", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
