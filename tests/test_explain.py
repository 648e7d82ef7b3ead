"""The step-by-step explainer: the lectures' worked examples, the reference arithmetic against
torch (micrograd's habit: same computation, two implementations), and the command's mistakes."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnlab.cli.main import main
from cnnlab.errors import UserError
from cnnlab.course.explain import explain_conv, explain_pool, format_explanation

# 001 'Convolutional layers' and 'Pooling layers': the 6x6 image of the worked examples
IMAGE_001 = "2 5 8 7 9 8; 1 3 4 2 8 3; 0 4 1 2 1 4; 3 3 8 7 5 1; 4 1 2 2 9 2; 5 1 3 7 4 8"


def test_001_horizontal_edge_kernel_on_the_6x6_image():
    # The slide's "Resulting image" prints
    #   -11 -20 -45 -70 / 6 13 11 -3 / -1 -1 9 14 / -7 -12 -6 5
    # Its first row is wrong after -20: the window at columns 2-4 is [8 7 9; 4 2 8; 1 2 1], and
    # -(8 + 14 + 9) + (1 + 4 + 1) = -25; the next, [7 9 8; 2 8 3; 2 1 4], gives -33 + 8 = -25.
    # The other twelve values are right.
    result = explain_conv(IMAGE_001, "sobel-y")
    assert result["output"] == [[[-11, -20, -25, -25], [6, 13, 11, -3], [-1, -1, 9, 14], [-7, -12, -6, 5]]]
    first = result["steps"][0]["terms"][0]
    assert first["products"] == [[-2, -10, -8], [0, 0, 0], [0, 8, 1]] and first["sum"] == -11
    typed = explain_conv(IMAGE_001, "-1 -2 -1; 0 0 0; 1 2 1")  # the kernel as the issue types it
    assert typed["output"] == result["output"]


def test_001_two_by_two_max_pooling_with_stride_2():
    # "2x2 max pooling ... With a stride of 2": 5 8 9 / 4 8 5 / 5 7 9
    result = explain_pool(IMAGE_001, "2")
    assert result["output"] == [[[5, 8, 9], [4, 8, 5], [5, 7, 9]]]
    assert result["steps"][0]["window"] == [[2, 5], [1, 3]]


def test_002_convolution_operation_first_element_is_19():
    # "0 x 0 + 1 x 1 + 3 x 2 + 4 x 3 = 19" for the 3x3 input 0..8 and the 2x2 kernel 0..3
    result = explain_conv("0 1 2; 3 4 5; 6 7 8", "0 1; 2 3")
    step = result["steps"][0]["terms"][0]
    assert step["window"] == [[0, 1], [3, 4]] and step["products"] == [[0, 1], [6, 12]] and step["sum"] == 19
    assert result["output"] == [[[19, 25], [37, 43]]]
    assert "sum([0 1; 3 4] * [0 1; 2 3]) = sum([0 1; 6 12]) = 19" in format_explanation(result)


def test_002_padding_adds_one_row_and_column_on_either_side():
    # "1 row and column are padded on either side, so a total of 2 rows or columns are added"
    result = explain_conv("0 1 2; 3 4 5; 6 7 8", "0 1; 2 3", padding="1")
    assert len(result["padded"][0]) == 5 and len(result["padded"][0][0]) == 5
    assert result["padded"][0][0] == [0, 0, 0, 0, 0] and result["padded"][0][1] == [0, 0, 1, 2, 0]
    assert [len(result["output"][0]), len(result["output"][0][0])] == [4, 4]


def test_004_multiple_input_channels_are_summed_into_each_output_channel():
    # "step 1: apply a convolution to each of the input channels; step 2: add up the results"
    result = explain_conv("1 2; 3 4 | 5 6; 7 8", ["1 0; 0 1 | 0 1; 1 0", "1 1; 1 1"], bias="10 0")
    step = result["steps"][0]
    assert [t["sum"] for t in step["terms"]] == [1 + 4, 6 + 7]
    assert step["value"] == 5 + 13 + 10
    assert result["output"] == [[[28]], [[10 + 26]]]  # the second kernel is used for both channels
    text = format_explanation(result)
    assert "channel 0: sum([1 2; 3 4] * [1 0; 0 1]) = sum([1 0; 0 4]) = 5" in text
    assert "= 5 + 13 + bias 10 = 28" in text


@pytest.mark.parametrize("mode,expected_top_row", [
    # 000: "Padding: Zero, Constant, Reflection, Replication", padding 1 around [1 2; 3 4]
    ("zeros", [0, 0, 0, 0]), ("constant", [7, 7, 7, 7]), ("reflect", [4, 3, 4, 3]),
    ("replicate", [1, 1, 2, 2]), ("circular", [4, 3, 4, 3])])
def test_000_padding_modes(mode, expected_top_row):
    result = explain_conv("1 2; 3 4", "identity", padding="1", padding_mode=mode, pad_value="7")
    assert result["padded"][0][0] == expected_top_row


def test_003_dilated_kernel_reads_every_other_pixel():
    result = explain_conv("1 2 3 4 5; 6 7 8 9 10; 11 12 13 14 15; 16 17 18 19 20; 21 22 23 24 25",
                          "1 0; 0 1", dilation="2")
    assert result["steps"][0]["rows"] == [0, 2] and result["steps"][0]["terms"][0]["window"] == [[1, 3], [11, 13]]
    assert "rows 0,2, cols 0,2" in format_explanation(result)


def test_003_transposed_convolution_stamps_the_kernel():
    result = explain_conv("1 2; 3 4", "1 1; 1 1", transposed=True, stride="2")
    assert result["output"] == [[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]
    assert "in[0](0,1) = 2 -> rows 0..1, cols 2..3: out[0] += [2 2; 2 2]" in format_explanation(result)


# ----------------------------------------------------------------------------- against torch

values = st.integers(-4, 4)


def _matrix_text(tensor: torch.Tensor) -> str:
    """C x H x W integers in the explainer's inline notation."""
    return " | ".join("; ".join(" ".join(str(int(v)) for v in row) for row in channel) for channel in tensor)


@st.composite
def conv_case(draw):
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    h, w, kh, kw = (draw(st.integers(1, 6)) for _ in range(4))
    x = torch.tensor(draw(st.lists(values, min_size=c_in * h * w, max_size=c_in * h * w))).reshape(c_in, h, w)
    k = torch.tensor(draw(st.lists(values, min_size=c_out * c_in * kh * kw, max_size=c_out * c_in * kh * kw)))
    bias = torch.tensor(draw(st.lists(values, min_size=c_out, max_size=c_out)))
    return x.double(), k.reshape(c_out, c_in, kh, kw).double(), bias.double()


@settings(max_examples=150, deadline=None)
@given(case=conv_case(), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.integers(1, 2),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_reference_cross_correlation_equals_torch_conv2d(case, stride, padding, dilation, mode):
    x, k, bias = case
    try:
        result = explain_conv(_matrix_text(x), [_matrix_text(kernel) for kernel in k], f"{stride[0]}x{stride[1]}",
                              f"{padding[0]}x{padding[1]}", mode, 0, str(dilation), bias=_matrix_text(bias[None, None]))
    except UserError:
        assume(False)  # impossible layers are the arithmetic tests' business
    padded = F.pad(x[None], (padding[1], padding[1], padding[0], padding[0]),
                   mode={"zeros": "constant"}.get(mode, mode))
    expected = F.conv2d(padded, k, bias, stride=stride, dilation=dilation)[0]
    assert torch.equal(torch.tensor(result["output"], dtype=torch.float64), expected)


@settings(max_examples=150, deadline=None)
@given(case=conv_case(), stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       output_padding=st.integers(0, 2))
def test_reference_transposed_convolution_equals_torch(case, stride, padding, dilation, output_padding):
    x, k, bias = case
    try:
        result = explain_conv(_matrix_text(x), [_matrix_text(kernel) for kernel in k], str(stride), str(padding),
                              dilation=str(dilation), transposed=True, output_padding=str(output_padding),
                              bias=_matrix_text(bias[None, None]))
    except UserError:
        assume(False)
    weight = k.transpose(0, 1)  # torch keeps transposed weights as in_channels x out_channels
    expected = F.conv_transpose2d(x[None], weight, bias, stride, padding, output_padding, dilation=dilation)[0]
    assert torch.equal(torch.tensor(result["output"], dtype=torch.float64), expected)


@settings(max_examples=200, deadline=None)
@given(x=st.integers(1, 7).flatmap(lambda h: st.integers(1, 7).flatmap(
           lambda w: st.lists(values, min_size=2 * h * w, max_size=2 * h * w).map(
               lambda v: torch.tensor(v, dtype=torch.float64).reshape(2, h, w)))),
       k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       mode=st.sampled_from(["max", "avg"]), ceil=st.booleans(), include_pad=st.booleans())
def test_reference_pooling_equals_torch(x, k, s, p, d, mode, ceil, include_pad):
    d = 1 if mode == "avg" else d
    try:
        result = explain_pool(_matrix_text(x), str(k), str(s), str(p), mode, str(d), ceil, include_pad)
    except UserError:
        assume(False)
    if mode == "max":
        expected = F.max_pool2d(x[None], k, s, p, d, ceil_mode=ceil)[0]
    else:
        expected = F.avg_pool2d(x[None], k, s, p, ceil_mode=ceil, count_include_pad=include_pad)[0]
    assert torch.allclose(torch.tensor(result["output"], dtype=torch.float64), expected, atol=1e-12)


# ----------------------------------------------------------------------------- the command

def test_explain_conv_json_gives_the_output_as_a_nested_list(capsys):
    assert main(["explain", "conv", "--input", IMAGE_001, "--kernel", "sobel-y", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output"][0][0] == [-11, -20, -25, -25] and len(result["steps"]) == 16


def test_explain_pool_text_shows_every_window(capsys):
    assert main(["explain", "pool", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel-size", "2", "--padding", "1",
                 "--mode", "avg"]) == 0
    out = capsys.readouterr().out
    assert "out[0](0,0) = sum[pad pad; pad 1] / 4 = 1/4 = 0.25" in out
    assert "count_include_pad=True" in out


@pytest.mark.parametrize("argv,fragment", [
    (["conv", "--input", "1 2; 3", "--kernel", "identity"], "same number of values, got rows of 2, 1"),
    (["conv", "--input", "1 x; 3 4", "--kernel", "identity"], "'x' in the input is not a number"),
    (["conv", "--input", "1 2; 3 4", "--kernel", "blurry"], "unknown kernel 'blurry'"),
    (["conv", "--input", "1 2; 3 4 | 5 6; 7 8 | 1 1; 1 1", "--kernel", "1 | 2"], "the kernel has 2 channels but the input has 3"),
    (["conv", "--input", "1 2; 3 4", "--kernel", "identity", "--padding", "2", "--padding-mode", "reflect"],
     "reflect padding 2 must be smaller than the input size 2"),
    (["conv", "--input", "1 2; 3 4", "--kernel", "1 1; 1 1", "--padding-mode", "mirror"], "unknown padding mode 'mirror'"),
    (["conv", "--input", "1 2; 3 4", "--kernel", "identity", "--stride", "0"], "stride must be a positive"),
    (["conv", "--input", "1 2; 3 4", "--kernel", "1 1; 1 1", "--bias", "1 2"], "needs 1 value(s)"),
    (["pool", "--input", "1 2; 3 4", "--mode", "median"], "unknown pooling mode 'median'"),
    (["pool", "--input", "1 2; 3 4", "--kernel-size", "3"], "the kernel spans 3"),
])
def test_explain_mistakes_are_one_line_and_exit_2(argv, fragment, capsys):
    assert main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and fragment in lines[0]
