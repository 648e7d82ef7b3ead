"""`cnnlab stylize`: the losses by hand, the layers the paper names, and the command as a
user runs it (pictures, numbers, files, every mistake)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab.cli.main import main
from cnnlab.stylize.losses import content_loss, gram_matrix, style_loss, total_variation


def test_gram_matrix_is_channel_products_averaged_over_positions():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # 2 channels at 2 positions
    # [1*1 + 2*2, 1*3 + 2*4; 3*1 + 4*2, 3*3 + 4*4] / 2 positions
    assert gram_matrix(features).tolist() == [[[2.5, 5.5], [5.5, 12.5]]]
    # the same texture over four times the area has the same Gram matrix: size-free style
    assert torch.equal(gram_matrix(features.repeat(1, 1, 2, 2)), gram_matrix(features))


def test_style_loss_is_the_mean_relative_gram_error_of_the_layers():
    first = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])          # Gram [[2.5, 5.5], [5.5, 12.5]]
    second = torch.tensor([[[[1.0], [3.0]]]])                       # Gram [[(1 + 9) / 2]] = [[5]]
    targets = [torch.tensor([[[2.5, 5.5], [5.5, 10.5]]]), torch.tensor([[[4.0]]])]
    # layer 1: (12.5 - 10.5)^2 / (2.5^2 + 2 * 5.5^2 + 10.5^2) = 4 / 177; layer 2: 1 / 16
    expected = (4 / 177 + 1 / 16) / 2
    assert style_loss([first, second], targets).item() == pytest.approx(expected, rel=1e-6)
    assert style_loss([first], [gram_matrix(first)]).item() == 0


def test_content_loss_and_total_variation_by_hand():
    target = torch.tensor([1.0, 2.0, 2.0, 4.0])
    # one feature off by 1; the target's energy is 1 + 4 + 4 + 16 = 25
    assert content_loss(torch.tensor([1.0, 2.0, 3.0, 4.0]), target).item() == pytest.approx(0.04)
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # down: (2 - 0)^2, (4 - 1)^2 -> mean 6.5; right: (1 - 0)^2, (4 - 2)^2 -> mean 2.5
    assert total_variation(image).item() == pytest.approx(9.0)


def test_vgg19_taps_are_the_papers_rectified_layers():
    from cnnlab.models.vgg import CFGS, make_layers
    from cnnlab.stylize.extractors import BACKBONES, _vgg_layer_paths
    paths, features = _vgg_layer_paths(), make_layers(CFGS["E"])
    spec = BACKBONES["vgg19"]
    assert (spec.content, spec.style) == ("conv4_2", ("conv1_1", "conv2_1", "conv3_1",
                                                      "conv4_1", "conv5_1"))
    # torchvision's vgg19.features: conv1_1 is [0], conv4_2 [21], conv5_1 [28]; their ReLUs follow
    assert [paths[n] for n in ("conv1_1", "conv4_2", "conv5_1")] == ["1", "22", "29"]
    for name in (spec.content, *spec.style):
        index = int(paths[name])
        assert isinstance(features[index], nn.ReLU) and isinstance(features[index - 1], nn.Conv2d)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run folders go to tmp_path/runs
    return tmp_path


def _stylize(capsys, *argv) -> dict:
    assert main(["stylize", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # two short optimisations of EfficientNet-Lite0's pixels
def test_stylize_lowers_the_style_loss_and_writes_its_run_folder(in_tmp, capsys):
    result = _stylize(capsys, "sample:chelsea", "sample:coffee", "--size", "64", "--steps",
                      "30", "--out", "cat.png")
    assert result["style_loss"]["final"] < result["style_loss"]["initial"] / 5
    assert result["content_loss"]["initial"] == 0  # it starts from the content image
    assert 0 < result["content_loss"]["final"] < 1
    assert result["backbone"] == "efficientnet_lite0" and result["output"] == "cat.png"
    assert result["seconds"] > 0 and result["evaluations"] <= 30
    run = Path(result["run_dir"])
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "result.png", "sheet.png",
                                                      "stylize.json"]
    with Image.open("cat.png") as picture:  # chelsea is 300 x 451: 43 x 64 at --size 64
        assert picture.size == (64, 43) and picture.mode == "RGB"
    assert np.array_equal(np.asarray(Image.open("cat.png")),
                          np.asarray(Image.open(run / "result.png")))
    saved = json.loads((run / "stylize.json").read_text())
    assert len(saved["history"]["style_loss"]) == result["evaluations"] + 1
    assert saved["style_loss"] == result["style_loss"]
    # cnnlab wrote cat.png, so a second run may replace it; it gets a folder of its own.
    # A grey image file as content: 48 x 72 pixels -> 21 x 32 at --size 32, in colour.
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 72), np.uint8)).save("g.png")
    again = _stylize(capsys, "g.png", "sample:coffee", "--size", "32", "--steps", "2",
                     "--out", "cat.png", "--optimizer", "adam")
    assert again["run_dir"] != result["run_dir"] and again["content"] == "g"
    with Image.open("cat.png") as picture:
        assert picture.size == (32, 21) and picture.mode == "RGB"


def test_a_picture_cnnlab_did_not_write_is_never_replaced(in_tmp, capsys):
    Image.new("RGB", (8, 8), "red").save("holiday.png")
    before = Path("holiday.png").read_bytes()
    assert main(["stylize", "sample:chelsea", "sample:coffee", "--out", "holiday.png"]) == 2
    assert "was not written by cnnlab" in capsys.readouterr().err
    assert Path("holiday.png").read_bytes() == before and not Path("runs").exists()


def _fake_vgg19_file(path: Path) -> Path:
    """A state dict shaped like torchvision's vgg19 (features only; random, for plumbing)."""
    from cnnlab.models.vgg import CFGS, make_layers
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(CFGS["E"]).state_dict().items()}
    torch.save(state, path)
    return path


@pytest.mark.slow  # builds VGG19's features twice
def test_vgg19_runs_from_a_weights_file_with_average_pooling(in_tmp, capsys):
    from cnnlab.stylize.extractors import feature_taps
    weights = _fake_vgg19_file(in_tmp / "vgg19.pth")
    _, taps = feature_taps("vgg19", weights_file=weights, pooling="avg")
    pools = [type(m) for m in taps.body.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert pools == [nn.AvgPool2d] * 5
    result = _stylize(capsys, "sample:chelsea", "sample:astronaut", "--backbone", "vgg19",
                      "--weights-file", str(weights), "--pooling", "avg", "--size", "48",
                      "--steps", "3")
    assert result["content_layer"] == "conv4_2" and result["pooling"] == "avg"
    assert Path(result["output"]).is_file()


@pytest.mark.parametrize("argv, message", [
    (["nowhere.jpg", "sample:coffee"], "nowhere.jpg does not exist; give an image file, or "
     "sample:NAME"),
    (["sample:chelsea", "sample:monalisa"], "unknown sample image 'monalisa'; choose one of:"),
    (["notes.png", "sample:coffee"], "notes.png is not an image file PIL can read"),
    (["sample:chelsea", "sample:coffee", "--backbone", "resnet"], "unknown backbone 'resnet'"),
    (["sample:chelsea", "sample:coffee", "--backbone", "vgg19"], "vgg19 needs its ImageNet "
     "weights: add --weights torchvision"),
    (["sample:chelsea", "sample:coffee", "--backbone", "vgg19", "--weights-file", "no.pth"],
     "weights file no.pth does not exist"),
    (["sample:chelsea", "sample:coffee", "--steps", "0"], "--steps must be a positive whole"),
    (["sample:chelsea", "sample:coffee", "--size", "8"], "--size must be a whole number of "
     "pixels from 32"),
    (["sample:chelsea", "sample:coffee", "--style-weight", "-1"], "--style-weight must be"),
    (["sample:chelsea", "sample:coffee", "--optimizer", "sgd"], "unknown optimizer 'sgd'"),
    (["sample:chelsea", "sample:coffee", "--pooling", "avg"], "efficientnet_lite0 has no "
     "pooling layers"),
    (["sample:chelsea", "sample:coffee", "--out", "result.gif"], "must end in .png, .jpg"),
])
def test_user_mistakes_get_one_sentence_and_exit_status_2(argv, message, in_tmp, capsys):
    Path("notes.png").write_text("a shopping list, not a picture")
    assert main(["stylize", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_weights_of_another_network_are_refused_in_one_sentence(in_tmp, capsys):
    torch.save({"conv.weight": torch.zeros(1)}, "other.pth")
    assert main(["stylize", "sample:chelsea", "sample:coffee", "--backbone", "vgg19",
                 "--weights-file", "other.pth"]) == 2
    assert "do not fit the network (missing" in capsys.readouterr().err
