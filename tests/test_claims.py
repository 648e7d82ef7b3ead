"""The lectures' claims about convolution, each checked by the command that shows it (issue 20,
items 1, 2, 3, 5 and 8): translation equivariance and invariance, a dense baseline against a
CNN on digits that move, border utilisation, two linear convolutions collapsing into one,
the kernel gradient as a correlation, GoogLeNet's 1x1 reductions; and the lectures' numeric
examples that had no test, with the slides' mistakes answered where a learner reads them.

Seed files are in ../shared/seeds/: 000 IN3063 CNNs, 001 Imperial lecture 2, 002 CS428
lecture 4, 003 Deep Learning Fall 2020, 004 'CNNs as local linear regression'.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.cli.main import main
from cnnlab.course.arithmetic import conv_shape
from cnnlab.course.claims_conv import (compose_kernels, explain_border, explain_collapse,
                                       explain_kernel_gradient, usage_counts)
from cnnlab.course.claims_fit import small_cnn
from cnnlab.course.claims_inception import explain_inception
from cnnlab.course.claims_shift import layer_errors, shift_image
from cnnlab.course.summary import summarize
from cnnlab.layers import same_padding

ROOT = Path(__file__).resolve().parents[1]


def _json(argv, capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- 1: shift

def test_stride_1_feature_maps_shift_exactly_with_the_image_and_pooling_breaks_it():
    torch.manual_seed(0)
    image = torch.zeros(1, 32, 32)
    image[:, 8:24, 8:24] = torch.rand(1, 16, 16)  # any picture will do: the weights are random too
    rows = layer_errors(small_cnn(), image, [1, 2, 4])
    by_stride = {}
    for row in rows:
        for s in row["shifts"]:
            assert s["positions"] > 0
            by_stride.setdefault((row["stride"], s["shift"]), []).append(s["max_error"])
    # away from the borders a stride-1 map shifted back is the original map, exactly
    assert all(e == 0.0 for k in (1, 2, 4) for e in by_stride[(1, k)])
    # after a 2x2 pool only even shifts are whole positions; after two, multiples of 4
    assert all(e == 0.0 for e in by_stride[(2, 2)] + by_stride[(2, 4)] + by_stride[(4, 4)])
    assert min(by_stride[(2, 1)]) > 0.01 and min(by_stride[(4, 2)]) > 0.01


def test_shift_image_moves_the_content_and_fills_with_zeros():
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    assert shift_image(x, 0, 1)[0, 0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shift_image(x, -1, 0)[0, 0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]


@pytest.mark.slow
def test_explain_shift_a_pooled_network_keeps_its_answer_where_a_flattened_one_does_not(capsys, tmp_path):
    result = _json(["explain", "shift", "--epochs-scale", "0.5", "--shifts", "1,2",
                    "--out", str(tmp_path / "shift.png")], capsys)
    assert result["stride_1_max_error"] == 0.0
    assert (tmp_path / "shift.png").stat().st_size > 10_000
    pooled = {r["shift"]: r for r in result["invariance"]["global max pool"]}
    flat = {r["shift"]: r for r in result["invariance"]["flatten + linear"]}
    # moved 6 pixels, three times what training saw: the pooled CNN mostly answers the same
    assert pooled[6]["same_prediction"] > 0.7
    assert flat[6]["same_prediction"] < pooled[6]["same_prediction"] - 0.3


# ----------------------------------------------------------------------------- 2: dense

@pytest.mark.slow
def test_explain_dense_one_weight_per_pixel_loses_more_when_the_digit_moves(capsys, tmp_path):
    result = _json(["explain", "dense", "--out", str(tmp_path / "dense.png")], capsys)
    models = result["models"]
    assert models["mlp"]["params"] == 24 * 24 * 256 + 256 + 256 * 10 + 10
    assert models["linear"]["params"] == 24 * 24 * 10 + 10
    assert models["cnn"]["params"] < models["mlp"]["params"] / 10
    # centred, the MLP and the CNN both read most digits; moved 6 pixels, only the CNN does
    assert models["mlp"]["centred_accuracy"] > 0.7 and models["cnn"]["centred_accuracy"] > 0.7
    assert models["mlp"]["drop"] > models["cnn"]["drop"] + 0.4
    assert models["linear"]["drop"] > models["cnn"]["drop"]
    assert models["cnn"]["shifted_accuracy"] > 0.7
    # 002: "Input size = 200 x 200 x 3 = 120K. Parameters = 120K x 1000 = 120 million."
    assert result["lecture"]["dense_weights"] == 120_000_000
    assert result["lecture"]["conv_3x3_params"] == 1000 * (27 + 1)
    assert (tmp_path / "dense.png").stat().st_size > 10_000


def test_mlp_and_linear_are_registered_and_count_one_weight_per_pixel():
    from cnnlab.models import create_model, parameter_count
    assert parameter_count("linear") == 28 * 28 * 10 + 10
    assert parameter_count("mlp") == 28 * 28 * 256 + 256 + 256 * 10 + 10
    model = create_model("mlp", num_classes=3, in_channels=3)
    assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 3)


# ----------------------------------------------------------------------------- 3: 002's small facts

def test_border_corners_are_used_once_and_the_centre_k_squared_times():
    result = explain_border(size="6", kernel_size=["1", "2", "3"])
    assert [(m["corner"], m["centre"]) for m in result["maps"]] == [(1, 1), (1, 4), (1, 9)]
    assert result["maps"][2]["counts"][0] == [1, 2, 3, 3, 2, 1]
    # independently: count the windows torch's unfold makes that contain each pixel
    index = torch.arange(36.0).reshape(1, 1, 6, 6)
    windows = F.unfold(index, 3).long().flatten()
    assert torch.bincount(windows, minlength=36).reshape(6, 6).equal(usage_counts(6, 6, 3).long())
    padded = explain_border(size="5", kernel_size=["3"], padding="1")["maps"][0]
    assert padded["output_size"] == [5, 5] and padded["corner"] == 4


def test_two_convolutions_without_a_nonlinearity_are_one_composed_convolution():
    result = explain_collapse(size="12", channels="3,4,2", kernel_size=["3", "3"])
    assert result["composed_kernel_size"] == 5 and result["output_shape"] == [2, 8, 8]
    assert result["max_abs_difference"] < 1e-10 * result["output_scale"]
    assert result["max_abs_difference_with_relu"] > 0.1 * result["output_scale"]
    # two 1-channel kernels: the composite of [1 1] then [1 -1] (as 1x2 rows) is [1 0 -1]
    first = torch.tensor([[[[0.0, 0], [1, 1]]]])
    second = torch.tensor([[[[0.0, 0], [1, -1]]]])
    assert compose_kernels(first, second)[0, 0, 2].tolist() == [1, 0, -1]


def test_the_kernel_gradient_is_the_input_correlated_with_the_output_gradient():
    result = explain_kernel_gradient()  # 002's 3x3 input 0..8 and 2x2 kernel 0..3
    # with L = sum(Y), dL/dK[a][b] is the sum of the input window each weight touches
    assert result["by_autograd"] == [[[8, 12], [20, 24]]] == result["by_correlation"]
    assert result["max_abs_difference"] <= 1e-6
    assert all(c["max_abs_difference"] <= 1e-6 for c in result["batch_checks"])
    strided = explain_kernel_gradient(input="1 2 3 4; 5 6 7 8; 9 10 11 12; 13 14 15 16",
                                      kernel="1 0 -1; 2 0 -2; 1 0 -1", stride="2", padding="1",
                                      grad_output="1 -1; 2 0.5")
    assert strided["max_abs_difference"] <= 1e-6


# ----------------------------------------------------------------------------- 5: inception

def test_inception_parameters_and_multiply_adds_equal_the_hand_worked_values():
    result = explain_inception()  # GoogLeNet inception (3a): 28x28x192
    naive, reduced = result["naive"], result["reduced"]
    # (a): 1x1: 192*64+64; 3x3: 192*9*128+128; 5x5: 192*25*32+32
    assert naive["params"] == 12_352 + 221_312 + 153_632 == 387_296
    assert naive["macs"] == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32) == 303_464_448
    # (b): 1x1 64; 1x1 96 then 3x3 128; 1x1 16 then 5x5 32; pool then 1x1 32
    assert reduced["params"] == 12_352 + 18_528 + 110_720 + 3_088 + 12_832 + 6_176 == 163_696
    assert reduced["macs"] == 28 * 28 * (192 * 64 + 192 * 96 + 96 * 9 * 128 + 192 * 16
                                         + 16 * 25 * 32 + 192 * 32) == 128_049_152  # the paper's 128M
    assert (naive["output_shape"][0], reduced["output_shape"][0]) == (64 + 128 + 32 + 192, 256)


@pytest.mark.slow
def test_explain_inception_json_and_mistakes(capsys, tmp_path):
    result = _json(["explain", "inception", "--input", "28x28x256", "--filters", "128,192,96",
                    "--reductions", "64,64", "--pool-proj", "64", "--out", str(tmp_path / "i.png")], capsys)
    assert result["naive"]["macs"] == 28 * 28 * 256 * (128 + 9 * 192 + 25 * 96) == 854_196_224
    assert result["macs_ratio"] > 3 and (tmp_path / "i.png").exists()
    assert main(["explain", "inception", "--filters", "64,128"]) == 2
    assert "takes 3 comma-separated numbers" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the commands

@pytest.mark.parametrize("argv,fragment", [
    (["explain", "shift", "--shifts", "0"], "--shifts takes whole numbers"),
    (["explain", "dense", "--epochs-scale", "lots"], "--epochs-scale must be a number"),
    (["explain", "dense", "--test-shift", "20"], "can move at most 8 pixels"),
    (["explain", "collapse", "--channels", "3,4"], "--channels takes three numbers"),
    (["explain", "border", "--size", "2", "--kernel-size", "3"], "does not fit"),
    (["explain", "kernel-gradient", "--grad-output", "1 2 3"], "dL/dY must have the output's shape"),
])
def test_claim_mistakes_are_one_sentence_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1


def test_explain_border_text_and_picture(capsys, tmp_path):
    assert main(["explain", "border", "--out", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "3x3 kernel: output 4x4; corner used 1 time(s), centre 9" in out
    assert (tmp_path / "b.png").stat().st_size > 5_000


def test_explain_help_imports_no_torch():
    code = ("import sys\nfrom cnnlab.cli.main import main\ntry:\n    main(['explain', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert "inception" in done.stdout and done.stdout.strip().endswith("False")


# ----------------------------------------------------------------------------- 8: numeric examples

class Model000(nn.Module):
    """000's `Model`, with forward indented into the class as the slide means it (the slide
    prints `def forward` at the left margin, outside the class)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 20, 5)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        return F.relu(self.conv2(x))


def test_000_model_two_5x5_convolutions_parameters_and_shapes():
    # conv1: 20*(1*25 + 1) = 520; conv2: 20*(20*25 + 1) = 10,020; each 5x5 trims 4 pixels
    result = summarize(Model000(), (1, 28, 28))
    rows = {r["name"]: r for r in result["layers"]}
    assert [rows["conv1"]["params"], rows["conv2"]["params"]] == [520, 10_020]
    assert result["total_params"] == 10_540
    assert rows["conv1"]["output_shape"] == [20, 24, 24] and rows["conv2"]["output_shape"] == [20, 20, 20]
    assert rows["conv2"]["receptive_field"] == [9, 9]


def test_003_googlenet_1x1_conv_with_32_filters_is_a_64_dimensional_dot_product():
    # "1x1 CONV with 32 filters (each filter has size 1x1x64, and performs a 64-dimensional
    # dot product)": on 56x56x64 (the figure's input) it keeps 56x56 and makes 32 channels
    result = conv_shape(input_size="56", kernel_size="1", in_channels=64, out_channels=32)
    assert result["output_shape"] == [32, 56, 56]
    assert result["params"] == 32 * (1 * 1 * 64 + 1) == 2_080
    assert result["macs"] == 56 * 56 * 32 * 64  # one 64-term dot product per output value


def test_004_flatten_a_batch_of_2x3x10x10_gives_2x300_not_600():
    batch = torch.zeros(2, 3, 10, 10)
    assert nn.Flatten()(batch).shape == (2, 300)
    assert torch.flatten(batch).shape == (600,)  # what flattening the batch axis too would give


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_keeps_the_size_for_odd_kernels_only():
    x = torch.zeros(1, 1, 9, 9)
    for k in (1, 3, 5, 7):
        assert nn.Conv2d(1, 1, k, padding=same_padding(k))(x).shape[-1] == 9 == \
            nn.Conv2d(1, 1, k, padding=k // 2)(x).shape[-1]
    # an even kernel: ours loses a column, 004's kernel_size // 2 gains one, torch's 'same'
    # pads the odd one on the right
    assert nn.Conv2d(1, 1, 2, padding=same_padding(2))(x).shape[-1] == 8
    assert nn.Conv2d(1, 1, 2, padding=2 // 2)(x).shape[-1] == 10
    assert nn.Conv2d(1, 1, 2, padding="same")(x).shape[-1] == 9


def test_conv_shape_says_what_the_slides_get_wrong():
    conv = " ".join(conv_shape(input_size="32", in_channels=3, out_channels=16)["lecture"])
    assert "one bias per kernel (per output channel: 16 in all)" in conv  # 002's 'Why +1?'
    pool = " ".join(conv_shape(input_size="32", pool="max", kernel_size="2")["lecture"])
    assert "nn.MaxPool2d(kernel_size, stride=None, padding=0)" in pool  # 004's takeaway
    assert "takes no channel count" in pool
