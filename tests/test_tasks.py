"""The task abstraction: the engine trains and evaluates whatever a task defines, knowing
nothing of classification; the run records its task and every verb reads it back."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from cnnlab.cli.main import main
from cnnlab.data.memory import TensorBatches
from cnnlab.engine.loop import EpochTally, evaluate, fit
from cnnlab.tasks import TASKS, make_task, task_views
from cnnlab.tasks.classify import Classify


class Brightness:
    """A task that is not classification: regress each image's mean brightness."""
    name = "brightness"

    class headline:  # noqa: N801 - the Headline interface, as a plain namespace
        key, label = "mae", "mae"
        show = staticmethod(lambda v: f"{v:.3f}")

    def loss(self, outputs, targets):
        return nn.functional.mse_loss(outputs.squeeze(1), targets), outputs

    def batch_sums(self, outputs, targets):
        return {"abs_error": (outputs.detach().squeeze(1) - targets).abs().sum()}

    def epoch_metrics(self, sums, seen):
        return {"mae": sums["abs_error"] / seen}

    def accumulator(self):
        task = self

        class Gather:
            errors, losses, seen = 0.0, 0.0, 0

            def add(self, inputs, outputs, targets):
                loss, _ = task.loss(outputs.float(), targets)
                self.losses += loss.item() * len(targets)
                self.errors += task.batch_sums(outputs.float(), targets)["abs_error"].item()
                self.seen += len(targets)

            def result(self):
                result = type("Result", (), {})()
                result.metrics = lambda: {"loss": self.losses / self.seen,
                                          "mae": self.errors / self.seen}
                return result
        return Gather()


def _brightness_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 8, 8, generator=g) * torch.rand(n, 1, 1, 1, generator=g)
    return images, images.mean(dim=(1, 2, 3))


def test_the_engine_fits_a_task_that_is_not_classification():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 1))
    history = fit(model, TensorBatches(*_brightness_data(256, 0), 32, shuffle=True),
                  TensorBatches(*_brightness_data(64, 1), 64), epochs=8, task=Brightness(),
                  optimizer=torch.optim.Adam(model.parameters(), lr=0.02))
    assert set(history[-1]) >= {"train_loss", "train_mae", "val_loss", "val_mae", "lr"}
    assert not any("accuracy" in key for key in history[-1])
    assert history[-1]["val_mae"] < history[0]["val_mae"] / 2
    # the epoch's tally and a separate evaluation agree on the same weights
    again = evaluate(model, TensorBatches(*_brightness_data(64, 1), 64), Brightness())
    assert again.metrics()["mae"] == pytest.approx(history[-1]["val_mae"], rel=1e-5)


def test_a_tally_round_trips_with_the_tasks_own_sums_and_reads_older_checkpoints():
    tally = EpochTally.new("cpu")
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 1, 1])
    tally.add(torch.tensor(0.5), Classify().batch_sums(logits, labels), 3)
    again = EpochTally.from_state(tally.state_dict(), "cpu")
    assert again.metrics(Classify())["train_accuracy"] == pytest.approx(2 / 3)
    # a checkpoint written before tasks existed kept classification's count as "correct"
    old = {k: v for k, v in tally.state_dict().items() if k != "sums"} | {
        "correct": torch.tensor(2)}
    assert EpochTally.from_state(old, "cpu").metrics(Classify())["train_accuracy"] == \
        pytest.approx(2 / 3)


def test_every_listed_task_builds_and_shows():
    for name in TASKS:
        task = make_task(name)
        assert task.name == name and task.headline.key
        views = task_views(name)
        for part in ("evaluation_report", "format_report", "report_sections", "predict",
                     "format_predictions"):
            assert callable(getattr(views, part)), (name, part)


def test_an_unknown_task_is_one_sentence_and_status_2(tmp_path, capsys):
    # on the command line argparse's choices answer, with status 2
    with pytest.raises(SystemExit) as stop:
        main(["train", "--task", "nope", "--out", str(tmp_path / "r")])
    assert stop.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("task: nope\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "classify" in err
    assert not (tmp_path / "r").exists()


def test_the_run_records_its_task_and_resume_keeps_it(short_run, capsys):
    config = json.loads((short_run.run_dir / "config.json").read_text())
    assert config["train"]["task"] == "classify"
    assert main(["train", "--resume", str(short_run.run_dir), "--task", "segment"]) == 2
    assert "--task cannot be changed" in capsys.readouterr().err


def test_a_run_from_before_tasks_is_evaluated_as_classification(short_run, tmp_path, capsys):
    old = tmp_path / "old-run"
    shutil.copytree(short_run.run_dir, old, ignore=shutil.ignore_patterns("checkpoints"))
    record = json.loads((old / "config.json").read_text())
    del record["train"]["task"]
    (old / "config.json").write_text(json.dumps(record))
    assert main(["evaluate", str(old), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "classify"
    assert report["accuracy"] == pytest.approx(short_run.test_accuracy, abs=1e-6)


def test_what_a_run_reports_goes_through_the_cnnlab_logger(tmp_path, caplog, capsys):
    from cnnlab import TrainConfig, train
    with caplog.at_level("INFO", logger="cnnlab"):
        train(TrainConfig(epochs=1, limit_batches=2, out=str(tmp_path / "r")))
    lines = [r.getMessage() for r in caplog.records if r.name == "cnnlab"]
    assert any(line.startswith("epoch   1/1") for line in lines)
    assert any(line.startswith("test accuracy") for line in lines)
    # the application's handler (pytest's here) decides: cnnlab adds no second printer
    assert "test accuracy" not in capsys.readouterr().err
