"""Issue 20, item 6: the lectures' loss and metrics (000 'loss with logits', 003's top-5)."""
from __future__ import annotations

import json

from cnnlab import TrainConfig
from cnnlab.cli.main import main


def test_cross_entropy_is_log_softmax_then_nll_and_one_logit_is_two(capsys):
    assert main(["explain", "loss", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cross_entropy_difference"] < 1e-12
    assert result["binary_difference"] < 1e-12
    assert abs(result["bce_by_hand"] - result["bce_with_logits"]) < 1e-12
    models = result["trained"]["models"]
    assert models["one_logit_bce_with_logits"]["outputs"] == 1
    assert all(row["test_accuracy"] > 0.9 for row in models.values())
    assert result["trained"]["same_answer"] > 0.9


def test_top5_accuracy_is_reported_where_there_are_more_than_five_classes(short_run, capsys):
    assert 0 < short_run.to_dict()["test_top5_accuracy"] <= 1
    assert short_run.test_top5_accuracy >= short_run.test_accuracy
    assert main(["evaluate", str(short_run.run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["top5_accuracy"] == short_run.test_top5_accuracy
    assert main(["evaluate", str(short_run.run_dir)]) == 0
    assert ", top-5 " in capsys.readouterr().out


def test_label_smoothing_is_off_unless_a_recipe_turns_it_on():
    assert TrainConfig().label_smoothing == 0.0
    assert TrainConfig.from_dict({"recipe": "cifar10-fast"}).label_smoothing > 0
