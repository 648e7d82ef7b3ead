"""Layer arithmetic: every size and parameter count the lecture notes print, the lectures' own
formulas against PyTorch's, and `cnnlab conv-shape` as a user runs it, mistakes included.

Seed files are in ../shared/seeds/: 002 is CS428 lecture 4, 003 Deep Learning Fall 2020,
004 'CNNs as local linear regression', 001 Imperial 'Deep Learning in Python' lecture 2.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.course.arithmetic import (conclusion1, conclusion2, conclusion3, conclusion5,
                                      conv_length, conv_shape, cs428_pool_length,
                                      lecture_output_size, make_layer, output_size, param_count,
                                      pool_length)
from cnnlab.cli.main import main
from cnnlab.errors import UserError
from cnnlab.course.receptive import receptive_fields


def shape(**kw):
    return tuple(conv_shape(**kw)["output_size"])


# ----------------------------------------------------------------------------- 002, CS428 lecture 4

def test_002_overview_a_dense_first_layer_on_200x200_rgb_has_120_million_weights():
    # "Input size = 200 x 200 x 3 = 120K. Parameters = 120K x 1000 = 120 million."
    # A fully connected layer is a convolution whose kernel covers the whole image.
    result = conv_shape(input_size="200", kernel_size="200", in_channels=3, out_channels=1000, bias=False)
    assert result["output_size"] == [1, 1]
    assert result["params"] == 200 * 200 * 3 * 1000 == 120_000_000


def test_002_convolution_operation_3x3_input_2x2_kernel_gives_2x2():
    # "input ... 3x3, kernel ... 2x2" and conclusion 1: (n_h - k_h + 1) x (n_w - k_w + 1)
    assert shape(input_size="3", kernel_size="2") == (2, 2) == (conclusion1(3, 2),) * 2


def test_002_conclusions_1_to_3_agree_with_pytorchs_formula_on_a_grid():
    for n in range(1, 12):
        for k in range(1, n + 1):
            assert conclusion1(n, k) == conv_length(n, k)
            for p in range(0, 3):
                assert conclusion2(n, k, p) == conv_length(n, k, 1, (p, p))
                for s in range(1, 5):
                    assert conclusion3(n, k, p, s) == conv_length(n, k, s, (p, p))


def test_002_extension_padding_one_on_each_side_adds_two_rows_and_columns():
    # "1 row and column are padded on either side, so a total of 2 rows or columns are added":
    # a 3x3 input with a 3x3 kernel keeps its size instead of shrinking to 1x1.
    assert shape(input_size="3", kernel_size="3", padding="1") == (3, 3)
    assert shape(input_size="3", kernel_size="3") == (1, 1)


def test_002_extension_stride_3_and_2_for_height_and_width():
    # "Cross-correlation with strides of 3 and 2 for height and width" on the padded 3x3 example:
    # conclusion 3 gives floor((3 - 2 + 2 + 3)/3) = 2 and floor((3 - 2 + 2 + 2)/2) = 2.
    result = conv_shape(input_size="3", kernel_size="2", padding="1", stride="3x2")
    assert result["output_size"] == [2, 2]
    assert conclusion3(3, 2, 1, 3) == conclusion3(3, 2, 1, 2) == 2
    assert "CS428 conclusion 3" in " ".join(result["lecture"])


@pytest.mark.parametrize("n,pool", [(6, 2), (7, 2), (5, 3), (1, 2), (224, 2), (55, 3)])
def test_002_conclusion_4_ceil_n_over_pool_is_pytorchs_ceil_mode(n, pool):
    # "output size: ceil(n_h/pool_h) x ceil(n_w/pool_w)" with stride = pool size and no padding.
    lecture = cs428_pool_length(n, pool)
    assert lecture == pool_length(n, pool, pool, ceil_mode=True)
    assert torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), pool, ceil_mode=True).shape[-1] == lecture
    floor = pool_length(n, pool, pool)
    assert (floor == lecture) == (n % pool == 0)  # PyTorch's default only agrees when pool divides n


def test_002_conclusion_4_text_says_where_pytorch_differs():
    text = " ".join(conv_shape(input_size="7", pool="max", kernel_size="2")["lecture"])
    assert "ceil(7/2) = 4" in text and "floor mode gives 3" in text and "ceil_mode=True" in text
    agrees = " ".join(conv_shape(input_size="6", pool="max", kernel_size="2")["lecture"])
    assert "PyTorch agrees" in agrees


def test_pytorch_drops_a_ceil_mode_window_that_starts_in_the_right_padding():
    # ceil((5 + 2 - 1 - 1)/2) + 1 = 4, but window 4 would start at 6 = n + p: PyTorch gives 3.
    result = conv_shape(input_size="5", pool="max", kernel_size="2", padding="1", ceil_mode=True)
    assert result["output_size"] == [3, 3]
    assert "drops it: 3" in result["formula"]["height"]
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 2, padding=1, ceil_mode=True).shape[-1] == 3


def test_002_conclusion_5_parameters_and_pooling_has_none():
    # "# of parameters: c_out x (c_in x k_h x k_w + 1)"; "For One Pooling Layer # of parameters: 0"
    assert conclusion5(3, 16, 3, 3) == 448 == conv_shape(input_size="32", in_channels=3, out_channels=16)["params"]
    assert conv_shape(input_size="32", pool="max", kernel_size="2")["params"] == 0


def test_002_subclassing_net_layer_sizes():
    # The cifar2 Net: Conv2d(3, 16, 3, padding=1), MaxPool2d(2), Conv2d(16, 8, 3, padding=1),
    # MaxPool2d(2), then view(-1, 8 * 8 * 8): 32x32 must come out as 8x8.
    size = 32
    for layer in (make_layer("conv", 3, 1, 1), make_layer("max_pool", 2),
                  make_layer("conv", 3, 1, 1), make_layer("max_pool", 2)):
        size = output_size(layer, size)[0]
    assert size == 8
    assert param_count(make_layer("conv", 3, 1, 1, in_channels=16, out_channels=8)) == 1160


# ----------------------------------------------------------------------------- 003, Deep Learning Fall 2020

@pytest.mark.parametrize("f,s,p", [(3, 1, 1), (5, 1, 2), (1, 1, 0)])
def test_003_common_settings_keep_the_size(f, s, p):
    # "Common settings: [F=3, S=1, P=1], [F=5, S=1, P=2], [F=1, S=1, P=0]": O = (N + 2P - F)/S + 1 = N
    for n in (7, 32, 224):
        assert lecture_output_size(n, f, s, p) == n == shape(input_size=str(n), kernel_size=str(f), padding=str(p))[0]


def test_003_pooling_settings_and_the_fraction_pytorch_floors():
    # "Pooling (Common settings: [F=2, S=2], [F=3, S=2])": on 224, (224 - 2)/2 + 1 = 112 exactly,
    # but (224 - 3)/2 + 1 = 111.5, which PyTorch floors to 111.
    assert lecture_output_size(224, 2, 2, 0) == 112 == pool_length(224, 2, 2)
    assert float(lecture_output_size(224, 3, 2, 0)) == 111.5
    assert pool_length(224, 3, 2) == 111
    text = " ".join(conv_shape(input_size="224", kernel_size="3", stride="2")["lecture"])
    assert "223/2 = 111.5" in text and "rounds down to 111" in text


def test_003_parameters_f_f_cin_k_plus_k_and_conv2d_example():
    # "# of parameters: F * F * C_in * K + K"; Conv2d(64, 128, 3): weight [128, 64, 3, 3], bias [128]
    layer = make_layer("conv", 3, in_channels=64, out_channels=128)
    torch_layer = nn.Conv2d(64, 128, 3)
    assert tuple(torch_layer.weight.shape) == (128, 64, 3, 3) and tuple(torch_layer.bias.shape) == (128,)
    assert param_count(layer) == 3 * 3 * 64 * 128 + 128 == sum(p.numel() for p in torch_layer.parameters())


def test_003_dilated_3x3_rate_2_sees_5x5_with_9_weights():
    # "A 3x3 kernel with a dilation rate of 2 will have the same field of view as a 5x5 kernel,
    # while only using 9 parameters."
    dilated = make_layer("conv", 3, dilation=2, bias=False)
    assert dilated.effective_kernel(0) == 5 and param_count(dilated) == 9
    assert output_size(dilated, 9) == output_size(make_layer("conv", 5), 9) == (5, 5)
    assert receptive_fields([dilated])[0].rf == (5, 5)


def test_003_vgg_three_3x3_convs_see_7x7_with_fewer_weights():
    # VGG: "Stack of 3*3 filters has the Same receptive field as 7*7", "Fewer parameters"
    stack = [make_layer("conv", 3, 1, 1, in_channels=64, out_channels=64, bias=False)] * 3
    assert receptive_fields(stack)[-1].rf == (7, 7)
    seven = make_layer("conv", 7, 1, 3, in_channels=64, out_channels=64, bias=False)
    assert 3 * param_count(stack[0]) == 27 * 64 * 64 < param_count(seven) == 49 * 64 * 64


def test_003_vgg_3x3_pad_1_keeps_and_2x2_pool_halves():
    # "3*3 Conv, stride 1, pad 1" and "2*2 max pool stride 2": 224 -> 224 -> 112
    assert shape(input_size="224", kernel_size="3", padding="1") == (224, 224)
    assert shape(input_size="224", pool="max", kernel_size="2", stride="2") == (112, 112)


# ----------------------------------------------------------------------------- 004, local linear regression

def test_004_in_pytorch_conv2d_1_1_kernel_2_has_4_weights_and_a_bias():
    # "model = nn.Conv2d(1, 1, kernel_size = 2) ... 2 x 2 (meaning 4 pixels) patches"
    assert param_count(make_layer("conv", 2, bias=False)) == 4
    assert param_count(make_layer("conv", 2)) == 5 == sum(p.numel() for p in nn.Conv2d(1, 1, 2).parameters())


def test_004_multiple_channels_conv2d_3_16_5_holds_48_kernels():
    # "conv.weight.data => 16 x 3 x 5 x 5 tensor: contains 48 kernels of size 5 x 5"; 16 biases
    layer = make_layer("conv", 5, in_channels=3, out_channels=16)
    assert param_count(layer) == 48 * 5 * 5 + 16 == 1216


def test_004_overall_convolution_stride_2_halves_and_k_over_2_padding_keeps():
    # nn.Conv2d(16, 32, kernel_size=3, padding=1, stride=2): "stride = 2 ... reducing image
    # resolution to half"; "if kernel_size is odd, this is equal to kernel_size // 2 to keep
    # same input/output shape"; "even number => need padding only on left or right side".
    assert shape(input_size="32", kernel_size="3", padding="1", stride="2", in_channels=16, out_channels=32) == (16, 16)
    for k in (1, 3, 5, 7):
        assert shape(input_size="20", kernel_size=str(k), padding=str(k // 2)) == (20, 20)
    assert shape(input_size="20", kernel_size="4", padding="2") == (21, 21)  # even: one too many
    assert shape(input_size="20", kernel_size="4", padding="same") == (20, 20)  # 1 left, 2 right
    assert make_layer("conv", 4, padding="same").padding == ((1, 2), (1, 2))


def test_004_pooling_in_pytorch_stride_defaults_to_kernel_size():
    # nn.AvgPool2d(kernel_size=3, padding=1, stride=3); "PyTorch uses kernel_size for the stride
    # if we don't specify it"; "final resolution being initial resolution divided by kernel size"
    assert make_layer("avg_pool", 3).stride == (3, 3)
    assert shape(input_size="9", pool="avg", kernel_size="3", padding="1") == (3, 3)
    assert F.avg_pool2d(torch.zeros(1, 1, 9, 9), 3, padding=1).shape[-1] == 3
    assert shape(input_size="12", pool="max", kernel_size="3") == (4, 4)


def test_004_a_2x2_pool_then_a_2x2_conv_sees_4x4():
    # "a 2x2 pooling layer followed by a 2x2 convolution layer: each output of the convolution
    # uses a 4x4 of values from the input of the pooling layer"
    pool, conv = make_layer("max_pool", 2), make_layer("conv", 2)
    assert receptive_fields([pool, conv])[-1].rf == (4, 4)


def test_004_lenet_sizes_end_in_16_by_5_by_5():
    # Conv2d(1, 6, 5, padding=2), AvgPool2d(2, 2), Conv2d(6, 16, 5), AvgPool2d(2, 2), Linear(16*5*5, 120)
    layers = [make_layer("conv", 5, 1, 2), make_layer("avg_pool", 2, 2),
              make_layer("conv", 5), make_layer("avg_pool", 2, 2)]
    sizes, n = [], 28
    for layer in layers:
        n = output_size(layer, n)[0]
        sizes.append(n)
    assert sizes == [28, 14, 10, 5]


def test_001_new_layers_32x32_becomes_6x8x8():
    # "nn.Linear(6*8*8, 120) # 6 channels of 8x8 pixels (starting at 32x32 pixels)"
    n = 32
    for layer in (make_layer("conv", 3, 1, 1), make_layer("max_pool", 2, 2)) * 2:
        n = output_size(layer, n)[0]
    assert n == 8


# ----------------------------------------------------------------------------- against torch, at random

def _torch_size(kind, n, k, s, p, d, op, groups, cin, cout, ceil):
    x = torch.zeros(1, cin, *n)
    if kind == "conv":  # the modules, which refuse channels that groups do not divide
        y = nn.Conv2d(cin, cout, k, s, p, d, groups)(x)
    elif kind == "conv_transpose":
        y = nn.ConvTranspose2d(cin, cout, k, s, p, op, groups, dilation=d)(x)
    elif kind == "max_pool":
        y = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
    else:
        y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil)
    return tuple(y.shape[-2:])


pairs = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))  # noqa: E731


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool"]), n=pairs(1, 12),
       k=pairs(1, 6), s=pairs(1, 4), p=pairs(0, 3), d=pairs(1, 3), op=pairs(0, 2),
       groups=st.sampled_from([1, 2, 3]), cin=st.sampled_from([1, 2, 3, 6]),
       cout=st.sampled_from([1, 2, 3, 6]), ceil=st.booleans())
def test_formula_accepts_exactly_what_torch_accepts_and_agrees_on_size(kind, n, k, s, p, d, op, groups, cin, cout, ceil):
    if kind == "avg_pool":
        d = (1, 1)
    pool = kind.endswith("pool")
    try:
        layer = make_layer(kind, f"{k[0]}x{k[1]}", f"{s[0]}x{s[1]}", f"{p[0]}x{p[1]}", f"{d[0]}x{d[1]}",
                           groups, cin, cout, True, f"{op[0]}x{op[1]}" if kind == "conv_transpose" else "0",
                           ceil and pool)
        ours = output_size(layer, n)
    except UserError as exc:
        ours, message = None, str(exc)
    try:
        theirs = _torch_size(kind, n, k, s, p, d, op, groups, cin, cout, ceil and pool)
    except (RuntimeError, ValueError):
        theirs = None
    if ours is None and theirs is not None:
        # the one deliberate difference: torch returns an empty transposed output, we refuse it
        assert kind == "conv_transpose" and 0 in theirs, message
    else:
        assert ours == theirs
    if ours is None:
        assert message.endswith(".") and "\n" not in message


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 30), k=st.integers(1, 9), s=st.integers(1, 5), p=st.integers(0, 4))
def test_the_three_lecture_forms_are_one_formula(n, k, s, p):
    if n + 2 * p < k:
        return
    exact = lecture_output_size(n, k, s, p)  # 003, possibly a fraction
    assert int(exact) == conclusion3(n, k, p, s) == conv_length(n, k, s, (p, p))


# ----------------------------------------------------------------------------- mistakes

@pytest.mark.parametrize("argv,fragment", [
    (["--input-size", "5", "--kernel-size", "7"], "more than the padded input's 5"),
    (["--input-size", "8", "--stride", "0"], "stride must be a positive whole number, got 0"),
    (["--input-size", "8", "--in-channels", "3", "--groups", "2"], "in_channels 3 is not divisible by groups 2"),
    (["--input-size", "8", "--out-channels", "5", "--groups", "2", "--in-channels", "4"], "out_channels 5"),
    (["--input-size", "8", "--padding", "same", "--stride", "2"], "needs stride 1"),
    (["--input-size", "8", "--pool", "max", "--kernel-size", "3", "--padding", "2"], "at most half the kernel size"),
    (["--input-size", "8", "--transposed", "--stride", "2", "--output-padding", "2"], "must be smaller than the stride"),
    (["--input-size", "8", "--ceil-mode"], "ceil mode applies to pooling"),
    (["--input-size", "8", "--pool", "median"], "unknown pooling 'median'; choose max or avg"),
    (["--input-size", "eight"], "input size must be a whole number or HxW"),
    (["--input-size", "8", "--groups", "two"], "groups must be a whole number"),
    (["--input-size", "8", "--padding", "1,2"], "four numbers left,right,top,bottom"),
])
def test_conv_shape_mistakes_are_one_line_and_exit_2(argv, fragment, capsys):
    assert main(["conv-shape", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and lines[0].startswith("cnnlab: error: ")
    assert "Traceback" not in captured.err


def test_conv_shape_json_has_size_params_and_formula(capsys):
    assert main(["conv-shape", "--input-size", "224", "--kernel-size", "11", "--stride", "4", "--padding", "2",
                 "--in-channels", "3", "--out-channels", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # AlexNet's (torchvision's) first layer: 224 -> 55, 64 * (3 * 11 * 11 + 1) parameters
    assert result["output_size"] == [55, 55] and result["params"] == 23296
    assert "floor((224 + 2*2 - 1*(11-1) - 1)/4) + 1 = floor(217/4) + 1 = 55" in result["formula"]["height"]
    assert result["formula"]["params"].endswith("= 23296")


def test_conv_shape_text_for_a_transposed_convolution(capsys):
    assert main(["conv-shape", "--input-size", "5", "--transposed", "--stride", "2", "--padding", "1",
                 "--output-padding", "1"]) == 0
    out = capsys.readouterr().out
    assert "(5-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 10" in out
    assert nn.ConvTranspose2d(1, 1, 3, 2, 1, 1)(torch.zeros(1, 1, 5, 5)).shape[-1] == 10


def test_the_installed_command_reports_a_mistake_without_a_traceback():
    cnnlab = Path(sys.executable).with_name("cnnlab")
    done = subprocess.run([str(cnnlab), "conv-shape", "--input-size", "4", "--kernel-size", "5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "cnnlab: error: the kernel spans 5 along the height, more than the padded input's 4; the output would be empty."]
