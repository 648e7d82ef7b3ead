"""The lectures' claims about training deep networks, each checked by the command that shows
it: residual shortcuts keep gradients reaching the early layers (explain depth), batch norm
keeps every layer's values at the scale of [-2, 2] (explain batchnorm), a new head of several
layers trains and resumes (--head-layers), and transfer from each cut point of the pretrained
backbone gives one accuracy per cut (explain transfer-depth)."""
from __future__ import annotations

import json

import pytest
import torch

from cnnlab import TrainConfig
from cnnlab.cli.main import main
from cnnlab.course.claims_batchnorm import explain_batchnorm
from cnnlab.course.claims_depth import explain_depth
from cnnlab.course.claims_fit import one_thread
from cnnlab.models import create_model, parameter_count
from cnnlab.runs.folder import load_run

from resume_check import assert_resumes_exactly

LITE0_CUTS = ["stem", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "stage8",
              "conv_head"]


@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_plain_networks_are_the_resnets_without_their_shortcuts(depth):
    plain, residual = create_model(f"plain{depth}"), create_model(f"resnet{depth}")
    assert parameter_count(f"plain{depth}") == parameter_count(f"resnet{depth}")
    assert list(plain.state_dict()) == list(residual.state_dict())
    # the same weights give other outputs: the shortcut is the only difference
    plain.load_state_dict(residual.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert not torch.allclose(plain.eval()(x), residual.eval()(x))


@pytest.mark.slow
def test_plain56s_early_layers_get_far_less_gradient_than_resnet56s():
    result = explain_depth(depth="56", steps="10", batch_size="16")
    plain, residual = result["networks"]
    assert (plain["model"], residual["model"]) == ("plain56", "resnet56")
    assert len(plain["gradient_norms"]) == 10 and len(plain["gradient_norms"][0]) == 55
    # over the run the gradient reaching plain56's first layers dies out ...
    assert plain["early_median"] < 0.2 * residual["early_median"]
    # ... after a first step where batch norm without shortcuts made it explode instead
    assert plain["early_at_step0"] > 10 * residual["early_at_step0"]


@pytest.mark.slow
def test_batch_norm_keeps_every_layers_spread_near_1_where_the_plain_stack_drifts():
    result = explain_batchnorm(depth="8", steps="5", batch_size="32")
    normed, bare = result["networks"]
    assert normed["batch_norm"] and not bare["batch_norm"]
    for moment in ("at_init", "trained"):
        assert len(normed[moment]) == len(bare[moment]) == 8
        low, high = normed[f"std_range_{moment}"]
        assert 0.9 < low <= high < 1.1
        assert normed[f"share_in_range_{moment}"] > 0.9  # 004's 'roughly in [-2, 2]'
        assert all(abs(layer["mean"]) < 0.1 for layer in normed[moment])
        low, high = bare[f"std_range_{moment}"]
        assert high > 5 * low  # without it the scale changes from layer to layer


def test_explain_depth_and_batchnorm_mistakes_are_one_sentence(capsys):
    assert main(["explain", "depth", "--depth", "21"]) == 2
    assert "--depth must be one of 20, 32, 44, 56" in capsys.readouterr().err
    assert main(["explain", "batchnorm", "--steps", "many"]) == 2
    assert "--steps must be a whole number" in capsys.readouterr().err
    assert main(["explain", "transfer-depth", "--head", "deep"]) == 2
    assert "--head must be one of linear, mlp" in capsys.readouterr().err
    # a picture name that cannot be saved is refused before the experiment, not after it
    assert main(["explain", "depth", "--out", "gradients.bmp"]) == 2
    assert "cannot save a picture as .bmp" in capsys.readouterr().err


@pytest.mark.slow
def test_explain_transfer_depth_gives_one_accuracy_per_cut_point(tmp_path, capsys):
    picture = tmp_path / "cuts.png"
    with one_thread():  # small batches of small images: threads would only wait on each other
        assert main(["explain", "transfer-depth", "--datasets", "lfw-faces", "--image-size", "32",
                     "--limit", "40", "--epochs", "20", "--json", "--out", str(picture)]) == 0
    result = json.loads(capsys.readouterr().out)
    (table,) = result["datasets"]
    assert [row["cut"] for row in table["rows"]] == LITE0_CUTS
    assert [row["channels"] for row in table["rows"]] == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    assert all(0.0 <= row["test_accuracy"] <= 1.0 for row in table["rows"])
    assert table["best_accuracy"] > 0.5  # ImageNet features tell faces from non-faces
    assert picture.stat().st_size > 0 and result["picture"] == str(picture)


HEAD_RUN = dict(pretrained="efficientnet_lite0", dataset="lfw-faces", batch_size=2,
                limit_batches=2, epochs=2, head_layers=2, device="cpu",
                memory_format="contiguous", precision="fp32")


@pytest.mark.slow
def test_a_head_of_several_layers_trains_whole_and_resumes_exactly(tmp_path):
    with one_thread():  # a few 224x224 images per step: threads would only wait on each other
        assert_resumes_exactly(TrainConfig(**HEAD_RUN), tmp_path, "val_loss")
    run = load_run(tmp_path / "straight")  # evaluate and predict rebuild the same head
    hidden, last = run.model.head.fc[0], run.model.head.fc[-1]
    assert (hidden.in_features, hidden.out_features, last.out_features) == (1280, 256, 2)
    result = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert result["train"]["head_layers"] == 2


def test_a_several_layer_head_is_what_feature_extraction_trains():
    from cnnlab.training import transfer
    model = transfer.build(TrainConfig(**HEAD_RUN), num_classes=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.fc.0.weight", "head.fc.0.bias", "head.fc.2.weight", "head.fc.2.bias"}
    assert transfer.parameter_counts(model)["trainable_parameters"] == 1280 * 256 + 256 + 256 * 2 + 2


@pytest.mark.parametrize("args, message", [
    (["--head-layers", "2"], "above 1 only for a classifier with --pretrained MODEL"),
    (["--pretrained", "efficientnet_lite0", "--head-layers", "9"], "--head-layers must be from 1 to 4"),
])
def test_head_layers_mistakes_are_one_sentence(args, message, capsys):
    assert main(["train", *args, "--epochs", "1"]) == 2
    assert message in capsys.readouterr().err
