"""One dataclass of defaults; --config files; flags override files; bad values are clear errors."""
from __future__ import annotations

import json

import pytest

from cnnlab.cli.main import build_parser, config_from_args
from cnnlab.config.train_config import TrainConfig
from cnnlab.errors import UserError


def _config(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_no_flags_gives_the_dataclass_defaults():
    assert _config() == TrainConfig()


def test_every_config_field_has_a_flag():
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for name in TrainConfig().to_dict():
        assert "--" + name.replace("_", "-") in help_text


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_sets_values_and_flags_override_it(tmp_path, suffix):
    values = {"epochs": 5, "lr": 0.2, "optimizer": "sgd", "model_kwargs": {"activation": "relu"}}
    path = tmp_path / f"c{suffix}"
    path.write_text(json.dumps(values) if suffix == ".json" else
                    "epochs: 5\nlr: 0.2\noptimizer: sgd\nmodel_kwargs:\n  activation: relu\n")
    config = _config("--config", str(path), "--lr", "0.05")
    assert (config.epochs, config.lr, config.optimizer) == (5, 0.05, "sgd")
    assert config.model_kwargs == {"activation": "relu"}


def test_model_kwargs_from_flags_are_typed():
    assert _config("--model-kwargs", "activation=relu", "depth=3").model_kwargs == {
        "activation": "relu", "depth": 3}


def test_unknown_key_in_a_config_file_names_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(UserError, match="unknown key 'learning_rate'"):
        _config("--config", str(path))


@pytest.mark.parametrize("field, value", [("lr", 0), ("lr", -0.1), ("batch_size", 0),
                                          ("epochs", -1), ("label_smoothing", 1.0)])
def test_values_that_cannot_train_are_refused(field, value):
    with pytest.raises(UserError, match=field.replace("_", "-")):
        TrainConfig(**{field: value}).validate()


def test_a_word_where_a_number_belongs_in_a_file_is_a_clear_error():
    with pytest.raises(UserError, match="epochs must be a whole number"):
        TrainConfig.from_dict({"epochs": "ten"})
