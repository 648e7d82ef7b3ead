"""`cnnlab summary`: parameter counts equal torchvision's, receptive fields equal the ones derived
by hand below, the trace and the formulas check each other, and mistakes are one sentence."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab.course.functional_rules
import cnnlab.course.summary
from cnnlab.cli.main import main
from cnnlab.models import list_models, model_info
from cnnlab.course.summary import FormulaMismatch, format_summary, summarize, summary


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """A summary needs shapes, never weights: any download attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("cnnlab summary tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def _rows(result: dict) -> dict:
    return {row["name"]: row for row in result["layers"]}


def _rf(result: dict, name: str) -> int:
    rf = _rows(result)[name]["receptive_field"]
    assert rf[0] == rf[1]
    return rf[0]


# ----------------------------------------------------------------------------- torchvision, published numbers

@pytest.fixture(scope="module")
def tv():
    """The three torchvision summaries, built once (weights=None: nothing is downloaded)."""
    return {name: summary(f"torchvision.models:{name}") for name in ("alexnet", "vgg16", "resnet18")}


@pytest.mark.parametrize("name,params,gmacs", [
    # parameter counts from torchvision's model docs; multiply-adds are its "GFLOPS" column,
    # which counts one multiply-add as one operation (conv and linear layers at 224x224)
    ("vgg16", 138_357_544, 15.47), ("resnet18", 11_689_512, 1.81), ("alexnet", 61_100_840, 0.71)])
def test_totals_equal_torchvisions_published_counts(tv, name, params, gmacs):
    result = tv[name]
    assert result["total_params"] == result["trainable_params"] == params
    assert sum(row["params"] for row in result["layers"]) == params
    assert round(result["macs"] / 1e9, 2) == gmacs
    # 003 says AlexNet has "60 million parameters" and VGG "138M": the paper's round figures;
    # torchvision's AlexNet (the one-GPU variant) has 61.1 million.


def test_alexnet_receptive_fields_derived_by_hand(tv):
    # torchvision AlexNet; rf' = rf + (k-1)*jump, jump' = jump*s:
    # conv1 11x11/4: rf 11, jump 4;  maxpool 3/2: 11 + 2*4 = 19, jump 8
    # conv2 5x5/1:   19 + 4*8 = 51;  maxpool 3/2: 51 + 2*8 = 67, jump 16
    # conv3, conv4, conv5 3x3/1: 67 + 2*16 = 99, 131, 163;  maxpool 3/2: 163 + 2*16 = 195, jump 32
    result = tv["alexnet"]
    expected = {"features.0": 11, "features.2": 19, "features.3": 51, "features.5": 67,
                "features.6": 99, "features.8": 131, "features.10": 163, "features.12": 195}
    assert {name: _rf(result, name) for name in expected} == expected
    assert result["receptive_field"] == 195
    # start: conv1 pads 2 on an 11-wide window, so unit 0 is centred at 5 - 2 = 3; each 3/2 pool
    # then moves it one jump further: 3 + 4 = 7, 7 + 8 = 15, 15 + 16 = 31
    assert _rows(result)["features.12"]["start"] == [31, 31]
    assert _rows(result)["features.12"]["jump"] == [32, 32]


def test_vgg16_receptive_fields_derived_by_hand(tv):
    # Each 3x3/1 conv adds 2*jump, each 2x2/2 pool adds 1*jump then doubles it:
    # block1: 3, 5, pool 6 (jump 2); block2: 10, 14, pool 16 (jump 4);
    # block3: 24, 32, 40, pool 44 (jump 8); block4: 60, 76, 92, pool 100 (jump 16);
    # block5: 132, 164, 196, pool 212 (jump 32)
    result = tv["vgg16"]
    convs = [r for r in result["layers"] if r["type"] in ("Conv2d", "MaxPool2d")]
    assert [r["receptive_field"][0] for r in convs] == [3, 5, 6, 10, 14, 16, 24, 32, 40, 44,
                                                       60, 76, 92, 100, 132, 164, 196, 212]
    assert result["receptive_field"] == 212
    # a 2x2 pool centres unit 0 between pixels: 0.5, then 0.5 + 0.5*2 = 1.5, 3.5, 7.5, 15.5
    assert convs[-1]["start"] == [15.5, 15.5]


def test_resnet18_receptive_fields_through_residual_branches(tv):
    # stem: conv1 7x7/2: rf 7, jump 2; maxpool 3x3/2: 7 + 2*2 = 11, jump 4
    # layer1: four 3x3 convs on the main path: 11 + 4*(2*4) = 43
    # layer2: conv 3x3/2 adds 2*4 -> 51 (jump 8), three more 3x3: 51 + 3*16 = 99
    # layer3: 99 + 2*8 = 115 (jump 16), + 3*32 = 211;  layer4: 211 + 2*16 = 243 (jump 32), + 3*64 = 435
    # The shortcut's 1x1/2 conv sees less (layer2.0.downsample: 43), so each sum takes the
    # larger main path, which is what the merge (the hull of centred windows) gives.
    result = tv["resnet18"]
    expected = {"conv1": 7, "maxpool": 11, "layer1.1.conv2": 43, "layer2.0.conv1": 51,
                "layer2.0.downsample.0": 43, "layer2.1.conv2": 99, "layer3.1.conv2": 211,
                "layer4.0.conv1": 243, "layer4.1.conv2": 435}
    assert {name: _rf(result, name) for name in expected} == expected
    assert result["receptive_field"] == 435
    # the ReLU after `out += identity` (a shared module, called again) reports the merged field
    relus = [r for r in result["layers"] if r["name"] == "layer2.0.relu"]
    assert [r["receptive_field"][0] for r in relus] == [51, 67] and relus[1]["shared"]


def test_lenet5_receptive_field_derived_by_hand():
    # 004's LeNet: conv 5x5 pad 2: 5; avgpool 2/2: 6 (jump 2); conv 5x5: 6 + 4*2 = 14; avgpool: 16
    result = summary("lenet5")
    rfs = [r["receptive_field"][0] for r in result["layers"] if r["receptive_field"]]
    assert sorted(set(rfs)) == [5, 6, 14, 16] and result["receptive_field"] == 16
    assert result["total_params"] == 61_706


# ----------------------------------------------------------------------------- the trace against the truth

def _gradient_extent(model: nn.Module, x: torch.Tensor, row: int, col: int):
    """Which input pixels one output unit depends on, found by backpropagation: the receptive
    field measured, not computed. Ones everywhere keep every path's gradient positive."""
    x = x.clone().requires_grad_(True)
    model(x)[0, 0, row, col].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2)))[:, 0]
    cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)))[:, 0]
    return (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1),
            float(rows.min() + rows.max()) / 2, float(cols.min() + cols.max()) / 2)


class Branchy(nn.Module):
    """A residual block whose branches see different amounts, an inception-style concatenation,
    a dilated and a strided convolution, asymmetric 'same' padding and average pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
        self.deep = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.Conv2d(2, 2, 3, padding=2, dilation=2, bias=False))
        self.short = nn.Conv2d(2, 2, 1, bias=False)
        self.wide = nn.Conv2d(2, 2, 5, padding=2, bias=False)
        self.even = nn.Conv2d(4, 2, 4, padding="same", bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        x = self.stem(x)
        x = self.deep(x) + self.short(x)
        x = torch.cat([x, self.wide(x)], dim=1)
        return self.pool(self.even(x))


def test_receptive_fields_match_backpropagation_through_branches():
    model = Branchy()
    for p in model.parameters():
        nn.init.ones_(p)
    x = torch.ones(1, 1, 96, 96, dtype=torch.float64)
    result = summarize(model.double(), (1, 96, 96))
    final = result["layers"][-1]
    row = col = 10  # an interior unit: its window lies wholly inside the image
    rf_h, rf_w, centre_h, centre_w = _gradient_extent(model, x, row, col)
    assert final["receptive_field"] == [rf_h, rf_w]
    assert [final["start"][0] + row * final["jump"][0], final["start"][1] + col * final["jump"][1]] == [centre_h, centre_w]


class Lopsided(nn.Module):
    """Two paths that look in opposite directions: one pads left/top, the other right/bottom."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 3, bias=False), nn.Conv2d(1, 1, 3, bias=False)

    def forward(self, x):
        return self.a(F.pad(x, (2, 0, 2, 0))) + self.b(F.pad(x, (0, 2, 0, 2)))


def test_paths_centred_apart_merge_to_the_hull_of_their_windows():
    # path a sees pixels i-2..i, path b sees i..i+2: their sum sees i-2..i+2, five pixels,
    # more than either path's three (the plain maximum would be wrong here)
    model = Lopsided()
    for p in model.parameters():
        nn.init.ones_(p)
    result = summarize(model.double(), (1, 12, 12))
    rows = [r for r in result["layers"] if r["type"] == "Conv2d"]
    assert [r["receptive_field"] for r in rows] == [[3, 3], [3, 3]]
    assert result["receptive_field"] == 5
    rf_h, rf_w, centre_h, _ = _gradient_extent(model, torch.ones(1, 1, 12, 12, dtype=torch.float64), 5, 5)
    assert (rf_h, rf_w, centre_h) == (5, 5, 5.0)


def test_transposed_convolution_receptive_field_is_the_widest_output():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False))
    for p in model.parameters():
        nn.init.ones_(p)
    result = summarize(model.double(), (1, 20, 20))
    final = result["layers"][-1]
    x = torch.ones(1, 1, 20, 20, dtype=torch.float64)
    widest = max(_gradient_extent(model.double(), x, r, r)[0] for r in range(8, 14))
    assert final["receptive_field"] == [widest, widest] and final["jump"] == [0.5, 0.5]


def test_formulas_that_disagree_with_the_forward_pass_fail_loudly(monkeypatch):
    real = cnnlab.course.functional_rules.output_size
    monkeypatch.setattr(cnnlab.course.functional_rules, "output_size",
                        lambda layer, hw: tuple(n + 1 for n in real(layer, hw)))
    with pytest.raises(FormulaMismatch, match="features.0: Conv2d formula gives 6x29x29, the forward pass gave 6x28x28"):
        summary("lenet5")


def test_a_parameter_formula_that_disagrees_fails_loudly(monkeypatch):
    monkeypatch.setattr(cnnlab.course.summary, "param_count", lambda layer: 1)
    with pytest.raises(FormulaMismatch, match="the parameter formula gives 1, the module holds 156"):
        summary("lenet5")


# ----------------------------------------------------------------------------- what a forward pass can do

class CS428Net(nn.Module):
    """CS428 (002) 'Subclassing nn.Module': the cifar2 Net, with its view(-1, 8 * 8 * 8)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.act1 = nn.Tanh()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.act2 = nn.Tanh()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.act3 = nn.Tanh()
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        out = self.pool1(self.act1(self.conv1(x)))
        out = self.pool2(self.act2(self.conv2(out)))
        out = out.view(-1, 8 * 8 * 8)
        return self.fc2(self.act3(self.fc1(out)))


def test_002_subclassing_net_shapes_and_parameters():
    # conv1 16*(3*9+1) = 448, conv2 8*(16*9+1) = 1160, fc1 512*32+32 = 16416, fc2 32*2+2 = 66
    result = summarize(CS428Net(), (3, 32, 32))
    rows = _rows(result)
    assert rows["pool2"]["output_shape"] == [8, 8, 8]
    assert [rows[n]["params"] for n in ("conv1", "conv2", "fc1", "fc2")] == [448, 1160, 16416, 66]
    assert result["total_params"] == 18090
    assert rows["fc1"]["macs"] == 512 * 32 and rows["fc1"]["receptive_field"] is None


class Reuse(nn.Module):
    """001's slide calls one conv, one ReLU and one pool twice; weights are shared."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.frozen = nn.Conv2d(4, 4, 1)
        for p in self.frozen.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        x = self.act(self.conv(x))
        x = self.act(self.conv(x))
        return F.max_pool2d(self.frozen(x), 2)  # a functional layer, outside any module


def test_shared_modules_count_once_and_frozen_ones_are_reported():
    result = summarize(Reuse(), (4, 8, 8))
    names = [(r["name"], r["shared"], r["params"]) for r in result["layers"]]
    assert names == [("conv", False, 148), ("act", False, 0), ("conv", True, 0), ("act", True, 0),
                     ("frozen", False, 20), ("max_pool2d", False, 0)]
    assert result["total_params"] == 168 and result["trainable_params"] == 148 and result["frozen_params"] == 20
    conv_macs = 8 * 8 * 4 * 4 * 9
    assert result["macs"] == 2 * conv_macs + 8 * 8 * 4 * 4  # the work is done twice, the weights held once
    assert result["layers"][-1]["type"] == "F.max_pool2d" and result["layers"][-1]["receptive_field"] == [6, 6]
    assert "20 (frozen)" in format_summary(result)


class Upsampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=2.0)


def test_an_operation_without_a_formula_makes_the_receptive_field_unknown():
    result = summarize(Upsampler(), (1, 10, 10))
    assert [r["type"] for r in result["layers"]] == ["Conv2d", "F.interpolate"]
    assert result["layers"][-1]["receptive_field"] is None and result["receptive_field"] is None
    assert "  ?  " in format_summary(result)


MYNET = """
from torch import nn

class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)

def make_net():
    return Net(8)

built = Net(2)
"""


def test_module_attribute_accepts_a_class_a_factory_or_an_instance(tmp_path, monkeypatch):
    # a user's own file in the folder they run cnnlab from
    (tmp_path / "cnnlab_test_mynet.py").write_text(MYNET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert summary("cnnlab_test_mynet:Net", "3x8x8")["total_params"] == 4 * (27 + 1)
    assert summary("cnnlab_test_mynet:make_net", "3x8x8")["total_params"] == 8 * (27 + 1)
    assert summary("cnnlab_test_mynet:built", "3x8x8")["total_params"] == 2 * (27 + 1)
    assert summary("torch.nn:Identity", "1x4x4")["total_params"] == 0


# every registered model small enough to trace in a moment; the ImageNet-sized ones are
# covered by the torchvision tests above, which they mirror
SMALL_MODELS = [name for name in list_models() if max(model_info(name).input_size[1:]) <= 64]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_registered_models_summarise_with_formulas_and_trace_agreeing(name):
    result = summary(name)  # a FormulaMismatch would raise here
    model = cnnlab.course.summary.load_model(name)[0]
    assert result["total_params"] == sum(p.numel() for p in model.parameters())
    assert result["total_params"] == sum(r["params"] for r in result["layers"]) + result["unused_params"]
    assert result["macs"] > 0
    # a generator's input is noise, not an image: it has no receptive field to trace
    assert (result["receptive_field"] is None) == (model_info(name).task == "gan")


def test_001_lecture_cnn_flattens_6_by_8_by_8():
    # 001 'New layers': "nn.Linear(6*8*8, 120) # 6 channels of 8x8 pixels (starting at 32x32 pixels)"
    assert _rows(summary("lecture_cnn"))["head.0"]["output_shape"] == [384]


def test_004_flatten_keeps_the_batch_axis():
    # "the flatten layer doesn't flatten the batch dimension, 2 x 3 x 10 x 10 becomes 2 x 300, not 600"
    result = summarize(nn.Sequential(nn.Flatten()), (3, 10, 10))
    assert result["layers"][0]["output_shape"] == [300]  # per example; the batch axis stays apart


def test_the_resnet_papers_strided_slice_shortcut_is_a_1x1_window_with_stride_2():
    class Shortcut(nn.Module):
        def forward(self, x):
            return x[:, :, 1::2, ::3]
    final = summarize(Shortcut(), (1, 10, 10))["layers"][-1]
    assert final["output_shape"] == [1, 5, 4]
    assert (final["receptive_field"], final["jump"], final["start"]) == ([1, 1], [2, 3], [1, 0])


# ----------------------------------------------------------------------------- the command

def test_summary_json_is_one_object_with_the_promised_keys(capsys):
    assert main(["summary", "lenet5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"layers", "total_params", "trainable_params", "macs", "receptive_field"} <= result.keys()
    assert {"name", "type", "output_shape", "params", "trainable_params", "frozen_params", "macs",
            "receptive_field", "jump", "start"} <= result["layers"][0].keys()
    assert result["layers"][0]["output_shape"] == [6, 28, 28]


def test_summary_text_has_a_row_per_layer_and_totals(capsys):
    assert main(["summary", "lenet5", "--input", "28"]) == 0  # one number: square, the model's channels
    out = capsys.readouterr().out
    assert "lenet5 on a 1x28x28 input" in out and "receptive field  16" in out
    assert "total parameters 61,706 (trainable 61,706, frozen 0)" in out
    assert len([line for line in out.splitlines() if line.startswith(("features.", "head."))]) == 12


@pytest.mark.parametrize("argv,fragment", [
    (["no_such_model"], "unknown model 'no_such_model'"),
    (["no_such_module_xyz:Net"], "cannot import module 'no_such_module_xyz'"),
    (["torchvision.models:no_such_net"], "has no attribute 'no_such_net'"),
    (["math:pi"], "neither an nn.Module nor something that builds one"),
    (["torch.nn:Conv2d"], "could not build torch.nn:Conv2d without arguments"),
    (["lenet5", "--input", "1x3x3"], "the model cannot run on a 1x3x3 input"),
    (["lenet5", "--input", "big"], "--input must be CxHxW"),
])
def test_summary_mistakes_are_one_line_and_exit_2(argv, fragment, capsys):
    assert main(["summary", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "Traceback" not in err[0]
