"""The training spine end to end: default accuracy, the run folder, schedules and optimisers."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from cnnlab import TrainConfig, train
from cnnlab.runs.checkpoint import load_checkpoint
from cnnlab.runs.folder import load_run

METRIC_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
               "seconds", "images_per_second"}


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_default_training_reaches_97_percent_on_digits(default_run):
    assert default_run.test_accuracy >= 0.97
    assert len(default_run.history) == TrainConfig().epochs


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_run_folder_holds_everything_needed_to_rebuild_the_run(default_run):
    run_dir = default_run.run_dir
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 31))
    assert all(METRIC_KEYS <= json.loads(line).keys() for line in lines)
    with Image.open(run_dir / "curves.png") as curves:
        assert curves.size[0] > 400
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["model"] == "lenet5" and config["classes"] == [str(d) for d in range(10)]
    assert config["preprocess"]["size"] == [28, 28]
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert saved == [f"epoch-{e:04d}-step-000000.safetensors" for e in (29, 30, 31)]  # --keep 3
    checkpoint = load_checkpoint(run_dir / "checkpoints" / saved[-1])
    assert checkpoint["epoch"] == 31 and checkpoint["tally"] is None  # epoch 30 complete
    assert checkpoint["optimizer"]["state"]


@pytest.mark.slow  # uses default_run, the default 30-epoch training
def test_loaded_run_reproduces_the_reported_test_accuracy(default_run):
    from cnnlab.infer.evaluate import evaluate_run
    report = evaluate_run(default_run.run_dir, device="cpu")
    assert report["accuracy"] == pytest.approx(default_run.test_accuracy, abs=1e-6)
    assert not load_run(default_run.run_dir).model.training


def test_same_seed_gives_the_same_run(tmp_path):
    first = train(TrainConfig(out=str(tmp_path / "a"), epochs=2), quiet=True)
    second = train(TrainConfig(out=str(tmp_path / "b"), epochs=2), quiet=True)
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]


def test_step_scheduler_decays_like_the_lectures_steplr(tmp_path):
    result = train(TrainConfig(out=str(tmp_path / "r"), epochs=4, optimizer="sgd", lr=0.1,
                               scheduler="step", step_size=2, gamma=0.1), quiet=True)
    assert [m["lr"] for m in result.history] == pytest.approx([0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("scheduler", ["none", "cosine"])
def test_every_optimizer_and_schedule_learns(tmp_path, optimizer, scheduler):
    result = train(TrainConfig(out=str(tmp_path / "r"), epochs=3, optimizer=optimizer,
                               scheduler=scheduler, lr=0.05 if optimizer == "sgd" else 0.005,
                               model_kwargs={"activation": "relu"}), quiet=True)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test_accuracy > 0.5


@pytest.mark.slow  # trains the lecture CNN to an accuracy
def test_lecture_cnn_trains_on_digits_as_colour_32x32(tmp_path):
    result = train(TrainConfig(out=str(tmp_path / "r"), model="lecture_cnn", epochs=3), quiet=True)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["preprocess"]["channels"] == 3 and config["preprocess"]["size"] == [32, 32]
    assert result.test_accuracy > 0.5
