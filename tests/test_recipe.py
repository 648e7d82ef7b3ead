"""`--recipe cifar10-fast`: its defaults, the whitened first layer, the weight average (EMA),
flip test-time augmentation, and a whole run through the CLI, evaluated and resumed.

Runs use the generated `shapes` set with a few small batches, so no test needs the network.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnnlab.runs.checkpoint import load_checkpoint
from cnnlab.cli.main import build_parser, config_from_args, main
from cnnlab.config.train_config import TrainConfig
from cnnlab.data.memory import TensorBatches
from cnnlab.engine.ema import make_ema
from cnnlab.engine.loop import evaluate
from cnnlab.accel.precision import recorded_precision
from cnnlab.errors import UserError
from cnnlab.layers.whitening import WhiteningConv, fit_whitening
from cnnlab.models import create_model
from cnnlab.config.recipes import RECIPES
from cnnlab.runs.resume import checkpoints
from cnnlab.runs.folder import load_run
from cnnlab.tasks.classify import Classify
from cnnlab.tasks.tta import FlipAveraged, with_tta

# The recipe shrunk to seconds on a CPU: 3 batches of 32 per split and epoch; the layout is
# fixed so no timing decides anything, and a checkpoint every 2 steps lets a test resume
# from the middle of an epoch.
SMOKE = ["--recipe", "cifar10-fast", "--dataset", "shapes", "--epochs", "2", "--limit-batches",
         "3", "--batch-size", "32", "--memory-format", "contiguous", "--checkpoint-every", "2",
         "--keep", "10", "--quiet", "--json"]


def _config(*argv) -> TrainConfig:
    return config_from_args(build_parser().parse_args(["train", *argv]))


def _correlated_images(n: int = 64, size: int = 12) -> torch.Tensor:
    """Noise smoothed across neighbouring pixels and channels: patches far from white."""
    torch.manual_seed(0)
    x = torch.randn(n, 3, size, size)
    x = x + 0.8 * x.roll(1, dims=-1) + 0.5 * x.roll(1, dims=-2)
    return x + 0.6 * x.mean(dim=1, keepdim=True) + torch.tensor([0.5, -0.2, 0.1]).view(1, 3, 1, 1)


# --- the recipe's defaults ------------------------------------------------------------------

def test_the_recipe_sets_its_defaults():
    config = _config("--recipe", "cifar10-fast")
    assert config == TrainConfig.for_recipe("cifar10-fast")
    for key, value in RECIPES["cifar10-fast"].items():
        assert getattr(config, key) == value, key
    assert (config.model, config.dataset, config.optimizer, config.ema, config.tta) == (
        "cifar_fast", "cifar10", "nesterov", 0.99, "flip")
    assert config.label_smoothing == 0.2 and config.recipe == "cifar10-fast"


def test_flags_and_config_files_override_the_recipe(tmp_path):
    config = _config("--recipe", "cifar10-fast", "--dataset", "shapes", "--epochs", "2",
                     "--ema", "0")
    assert (config.dataset, config.epochs, config.ema) == ("shapes", 2, 0.0)
    assert (config.model, config.batch_size, config.tta) == ("cifar_fast", 512, "flip")

    path = tmp_path / "c.yaml"
    path.write_text("recipe: cifar10-fast\nepochs: 3\nlr: 0.1\n")
    config = _config("--config", str(path), "--lr", "0.05")
    assert (config.model, config.epochs, config.lr) == ("cifar_fast", 3, 0.05)


def test_a_task_alone_starts_from_its_recipe_in_python_as_on_the_command_line():
    """TrainConfig.from_dict({"task": "detect"}) trains what `cnnlab train --task detect` does;
    a recipe's backbone stays with the recipe's model."""
    detect = TrainConfig.from_dict({"task": "detect"})
    assert (detect.recipe, detect.model, detect.dataset) == ("fasterrcnn-shapes", "fasterrcnn",
                                                            "shapes-objects")
    assert detect.model_kwargs == {"backbone": "resnet18"}
    other = TrainConfig.from_dict({"task": "detect", "model": "ssdlite"})
    assert (other.model, other.model_kwargs, other.dataset) == ("ssdlite", {}, "shapes-objects")
    args = build_parser().parse_args(["train", "--task", "detect", "--model", "ssdlite", "--quiet"])
    assert config_from_args(args) == other


def test_without_a_recipe_the_defaults_are_unchanged():
    config = _config()
    assert config.recipe is None and config.ema == 0 and config.tta == "none"


@pytest.mark.parametrize("values, words", [
    ({"recipe": "cifar-slow"}, "unknown recipe 'cifar-slow'"),
    ({"ema": 1.0}, "--ema must be in [0, 1)"),
    ({"optimizer": "nesterov", "momentum": 0.0}, "nesterov needs a positive --momentum"),
])
def test_bad_recipe_values_are_one_sentence_errors(values, words):
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace(")", r"\)")):
        TrainConfig.from_dict(values).validate()


# --- the whitened first layer -------------------------------------------------------------

def test_the_whitening_layer_whitens_patches():
    images = _correlated_images()
    layer = WhiteningConv(3, kernel_size=2)
    layer.fit(images)
    out = layer(images)
    assert out.shape[1] == 24  # 12 patch directions, each with both signs
    whitened = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    torch.testing.assert_close(whitened.mean(dim=0), torch.zeros(12, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(whitened.T), torch.eye(12, dtype=torch.float64),
                               atol=0.02, rtol=0)
    torch.testing.assert_close(out[:, 12:], -out[:, :12])
    # The images' own patch covariance is far from the identity: the layer did the work.
    raw = torch.nn.functional.unfold(images, 2).transpose(1, 2).reshape(-1, 12).double()
    assert (torch.cov(raw.T) - torch.eye(12, dtype=torch.float64)).abs().max() > 0.5


def test_the_whitening_layer_is_frozen_through_a_training_step():
    model = create_model("cifar_fast", num_classes=3)
    batches = TensorBatches(_correlated_images(32, 32), torch.arange(32) % 3, 16,
                            shuffle=True, seed=0)
    assert fit_whitening(model, batches) == 32
    assert all(not name.startswith("whiten") for name, _ in model.named_parameters())
    before = model.whiten.weight.clone(), model.whiten.bias.clone()
    head = model.fc.weight.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    inputs, labels = next(iter(batches))
    nn.functional.cross_entropy(model(inputs), labels).backward()
    optimizer.step()
    assert model.whiten.weight.grad is None
    assert torch.equal(model.whiten.weight, before[0]) and torch.equal(model.whiten.bias, before[1])
    assert not torch.equal(model.fc.weight, head)  # the rest did train


def test_fitting_is_deterministic_and_leaves_the_training_batches_where_they_were():
    images = (torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255)
    images, labels = images.to(torch.uint8), torch.arange(40) % 3

    def batches():
        return TensorBatches(images, labels, 8, shuffle=True, seed=7)

    def fitted(used):
        torch.manual_seed(len(used))  # another initialisation must not change the result
        model = create_model("cifar_fast", num_classes=3)
        assert fit_whitening(model, used, images=24) == 24
        return model.whiten.weight

    used = batches()
    torch.testing.assert_close(fitted(used), fitted(batches()), atol=0, rtol=0)
    for (a, la), (b, lb) in zip(used, batches()):  # training then sees the same batches
        assert torch.equal(a, b) and torch.equal(la, lb)


# --- EMA and test-time augmentation --------------------------------------------------------

def test_the_averaged_weights_lag_behind_the_trained_ones():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    ema = make_ema(model, decay=0.9)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        ema.update_parameters(model)
    assert not torch.allclose(ema.module[0].weight, model[0].weight)
    assert not torch.allclose(ema.module[1].running_mean, model[1].running_mean)
    assert int(ema.n_averaged) == 20 and ema.module[1].num_batches_tracked == 20
    assert torch.isfinite(ema.module[1].running_var).all()


def test_the_average_warms_up_then_keeps_its_decay():
    layer = nn.Linear(1, 1, bias=False)
    ema, expected = make_ema(layer, decay=0.5), None
    for n, value in enumerate([1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0]):
        layer.weight.data.fill_(value)
        ema.update_parameters(layer)
        # The first update copies; the n-th after it keeps min(0.5, (1 + n) / (10 + n)).
        decay = min(0.5, (1 + n) / (10 + n))
        expected = value if n == 0 else decay * expected + (1 - decay) * value
        assert ema.module.weight.item() == pytest.approx(expected)


def test_flip_tta_averages_the_logits_of_an_image_and_its_mirror():
    torch.manual_seed(0)
    model = create_model("cifar_fast", num_classes=5).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(-1))) / 2
        torch.testing.assert_close(FlipAveraged(model)(x), expected, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(x), expected)
    assert with_tta(model, "none") is model


# --- a whole run through the CLI -----------------------------------------------------------

@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", *SMOKE, "--out", str(out)]) == 0
    return out, json.loads(printed.getvalue())


@pytest.mark.slow  # uses recipe_run, a cifar10-fast training
def test_a_recipe_run_writes_its_folder_with_the_recipe_recorded(recipe_run):
    run, result = recipe_run
    assert result["epochs"] == 2 and 0 <= result["test_accuracy"] <= 1
    for name in ("config.json", "metrics.jsonl", "model.safetensors", "curves.png"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["recipe"], saved["model"], saved["dataset"], saved["epochs"]) == (
        "cifar10-fast", "cifar_fast", "shapes", 2)
    assert (saved["ema"], saved["tta"], saved["optimizer"]) == (0.99, "flip", "nesterov")


@pytest.mark.slow  # uses recipe_run, a cifar10-fast training
def test_the_saved_model_holds_the_averaged_weights_and_the_test_used_them(recipe_run):
    run, result = recipe_run
    final = load_checkpoint(checkpoints(run)[-1])
    assert final["epoch"] == 3 and "ema" in final
    saved = load_file(str(run / "model.safetensors"))
    averaged = {k.removeprefix("module."): v for k, v in final["ema"].items() if k != "n_averaged"}
    for key, value in saved.items():
        assert torch.equal(value, averaged[key]), key
    assert not torch.equal(saved["fc.weight"], final["model"]["fc.weight"])
    # The whitening was fitted (no longer the random initialisation) and kept as fitted.
    assert torch.equal(saved["whiten.weight"], final["model"]["whiten.weight"])

    # Recompute the reported test loss: averaged weights seen through flip TTA, on the
    # first 3 test batches (--limit-batches); the trained weights give another number.
    loaded = load_run(run)
    test = _first_test_batches(loaded, 3)
    precision = recorded_precision(loaded.spec.config.precision, torch.device("cpu"))
    with_flip = evaluate(with_tta(loaded.model, "flip"), test, Classify(), precision=precision)
    assert with_flip.loss == pytest.approx(result["test_loss"], abs=1e-5)
    loaded.model.load_state_dict(final["model"])
    assert evaluate(with_tta(loaded.model, "flip"), test, Classify(), precision=precision).loss != pytest.approx(
        result["test_loss"], abs=1e-5)


def _first_test_batches(run, count: int):
    from cnnlab.data import load_dataset
    test = load_dataset("shapes").test
    images = run.spec.preprocess.fit_size(test.images[:32 * count])
    return TensorBatches(run.spec.preprocess.normalise(images), test.labels[:32 * count], 32)


@pytest.mark.slow  # uses recipe_run, a cifar10-fast training
def test_cnnlab_evaluate_works_on_a_recipe_run(recipe_run, capsys):
    run, _ = recipe_run
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 800 and 0 <= report["accuracy"] <= 1
    assert (run / "confusion.png").is_file()


@pytest.mark.slow  # uses recipe_run, a cifar10-fast training
def test_a_recipe_run_resumed_mid_epoch_ends_with_identical_weights(recipe_run, tmp_path,
                                                                    capsys):
    run, _ = recipe_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    # As if killed right after the mid-epoch checkpoint of epoch 2 (step 2 of 3).
    for path in checkpoints(copy):
        if path.name > "epoch-0002-step-000002.safetensors":
            path.unlink()
    (copy / "model.safetensors").unlink()
    assert main(["train", "--resume", str(copy), "--quiet", "--json"]) == 0
    capsys.readouterr()
    assert (copy / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    ours = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["train_loss"], m["val_loss"]) for m in ours] == [
        (m["epoch"], m["train_loss"], m["val_loss"]) for m in theirs]


@pytest.mark.slow  # uses recipe_run, a cifar10-fast training
def test_resume_refuses_a_different_recipe(recipe_run, capsys):
    run, _ = recipe_run
    assert main(["train", "--resume", str(run), "--ema", "0.5"]) == 2
    assert "--ema cannot be changed" in capsys.readouterr().err
