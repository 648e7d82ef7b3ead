"""The zoo through the command line: `cnnlab models`, and every model training on digits."""
from __future__ import annotations

import json

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from cnnlab import list_models, model_info
from cnnlab.cli.main import main
from cnnlab.runs.folder import load_run

# One batch of two images per split: enough to run every code path, cheap for ResNet-152.
# SGD without momentum keeps no optimizer state, so the checkpoint stays small.
SMOKE = ["--epochs", "1", "--batch-size", "2", "--limit-batches", "1", "--optimizer", "sgd",
         "--momentum", "0", "--quiet", "--json"]


def test_models_lists_every_model_with_its_facts(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["name", "family", "parameters", "input", "small"]
    vgg16 = next(line for line in lines if line.startswith("vgg16 "))
    assert "138,357,544" in vgg16 and "3x224x224" in vgg16 and "Simonyan & Zisserman" in vgg16
    assert len(lines) == len(list_models()) + 1


def test_models_json_is_one_object_for_scripts(capsys):
    assert main(["models", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in table["models"]}
    assert list(rows) == list_models()
    assert rows["resnet50"]["parameters"] == 25_557_032
    assert rows["lenet5"] | {"options": None} == {
        "name": "lenet5", "family": "lenet", "parameters": 61_706, "num_classes": 10,
        "input_size": [1, 28, 28], "small_input_size": None, "mean": [0.5], "std": [0.5],
        "options": None, "torchvision_weights": False, "task": "classify",
        "paper": model_info("lenet5").paper}
    assert rows["googlenet"]["small_input_size"] == [3, 8, 8] and rows["googlenet"]["torchvision_weights"]


CLASSIFIERS = [name for name in list_models() if model_info(name).task == "classify"]
# One such epoch of these took over 3 s each on a 2-core CPU: `pytest -m "not slow"` skips them.
SLOW_MODELS = {"googlenet", "resnet34", "resnet44", "resnet50", "resnet101", "resnet152",
               "vgg13_bn", "vgg16", "vgg16_bn", "vgg19_bn"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow)
                                  if name in SLOW_MODELS else name for name in CLASSIFIERS])
def test_every_model_trains_one_epoch_on_digits_through_the_cli(name, tmp_path, capsys):
    run = tmp_path / name
    assert main(["train", "--model", name, "--out", str(run), *SMOKE]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs"] == 1 and 0 <= result["test_accuracy"] <= 1
    spec = json.loads((run / "config.json").read_text())
    info = model_info(name)
    if info.small_input_size:  # 8x8 digits: the small stem, at the smallest size it takes
        assert spec["model"]["kwargs"] == {"stem": "small"}
        assert spec["preprocess"]["size"] == list(info.small_input_size[1:])
    else:
        assert spec["preprocess"]["size"] == list(info.input_size[1:])


def test_a_small_stem_run_rebuilds_from_its_folder(tmp_path, capsys):
    assert main(["train", "--model", "resnet18", "--out", str(tmp_path / "r"), *SMOKE]) == 0
    model = load_run(tmp_path / "r").model
    assert model.conv1.kernel_size == (3, 3) and isinstance(model.maxpool, nn.Identity)


def test_norm_flag_reaches_the_model_and_the_run_folder(tmp_path, capsys):
    assert main(["train", "--model", "resnet20", "--norm", "group", "--out", str(tmp_path / "g"),
                 *SMOKE]) == 0
    spec = json.loads((tmp_path / "g" / "config.json").read_text())
    assert spec["train"]["norm"] == "group" and spec["model"]["kwargs"] == {"norm": "group"}
    model = load_run(tmp_path / "g").model
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("argv, message", [
    (["--model", "lenet5", "--norm", "group"], "model lenet5 keeps its own normalisation"),
    (["--model", "alexnet", "--norm", "batch"], "model alexnet keeps its own normalisation"),
    (["--model", "lenet5", "--weights", "torchvision"], "torchvision has no pretrained weights for lenet5"),
    (["--model", "resnet18", "--model-kwargs", "stem=tiny"], "unknown stem 'tiny'"),
    (["--limit-batches", "-1"], "--limit-batches must be 0 (no limit) or more"),
])
def test_training_option_mistakes_exit_2_with_one_sentence(argv, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x"), *SMOKE, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing is written for a run that cannot start


def test_unknown_norm_name_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--norm", "batchnorm"])
    assert stop.value.code == 2 and "invalid choice: 'batchnorm'" in capsys.readouterr().err


def test_limit_batches_bounds_every_split(tmp_path, capsys, monkeypatch):
    seen = []
    count = lambda batches: seen.append(sum(len(labels) for _, labels in batches))  # noqa: E731

    def fit(model, train_batches, val_batches, **kwargs):
        count(train_batches), count(val_batches)
        return real_fit(model, train_batches, val_batches, **kwargs)

    def evaluate(model, batches, *args, **kwargs):
        count(batches)
        return real_evaluate(model, batches, *args, **kwargs)
    from cnnlab.training import session  # the run's loop lives there
    real_fit, real_evaluate = session.fit, session.evaluate
    monkeypatch.setattr(session, "fit", fit)
    monkeypatch.setattr(session, "evaluate", evaluate)
    assert main(["train", "--out", str(tmp_path / "l"), "--epochs", "1", "--batch-size", "4",
                 "--limit-batches", "3", "--quiet"]) == 0
    assert seen == [12, 12, 12]  # train, validation and test: three batches of four each


def test_a_batch_limit_repeats_every_pass_and_ends_it_like_a_full_one():
    from cnnlab.data.memory import TensorBatches
    batches = TensorBatches(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), 2)
    batches.limit = 3
    assert len(batches) == 3 and len(list(batches)) == len(list(batches)) == 3
    assert [labels.tolist() for _, labels in batches] == [[0, 1], [2, 3], [4, 5]]
    assert batches.state_dict()["position"] == 0  # the pass is over, as after a full one
    batches.limit = 10
    assert len(batches) == 5


@pytest.mark.slow  # trains at 224 x 224
def test_training_starts_from_a_weights_file_through_the_imagenet_stem(tmp_path, capsys):
    theirs = torchvision.models.resnet18(weights=None)
    torch.save(theirs.state_dict(), tmp_path / "r18.pth")
    assert main(["train", "--model", "resnet18", "--weights-file", str(tmp_path / "r18.pth"),
                 "--lr", "1e-12", "--out", str(tmp_path / "w"), *SMOKE]) == 0
    spec = json.loads((tmp_path / "w" / "config.json").read_text())
    assert spec["model"]["kwargs"] == {"stem": "imagenet"} and spec["preprocess"]["size"] == [224, 224]
    trained = load_file(str(tmp_path / "w" / "model.safetensors"))
    torch.testing.assert_close(trained["conv1.weight"], theirs.conv1.weight.detach())
    assert trained["fc.weight"].shape == (10, 512)  # digits' ten classes: a fresh classifier
