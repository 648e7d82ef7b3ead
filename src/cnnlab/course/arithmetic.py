"""Convolution arithmetic: output sizes, parameter counts, multiply-adds and receptive fields.

The lectures give the same rule in several dresses, and this module writes each one out with
the numbers substituted so a learner can check a slide by hand:

- PyTorch's general rule, per spatial axis:  floor((n + 2p - d(k-1) - 1)/s) + 1
- Deep Learning Fall 2020 (003):             O = (N + 2P - F)/S + 1
- CS428 lecture 4 (002), conclusions 1-5:     n-k+1;  n-k+2p+1;  floor((n-k+2p+s)/s);
  ceil(n/pool) for pooling;  c_out(c_in k_h k_w + 1) parameters.

CS428's pooling formula (conclusion 4) rounds up, PyTorch's pooling rounds down unless
ceil_mode=True. With stride = pool size and no padding, ceil_mode=True gives exactly ceil(n/pool);
otherwise PyTorch adds one rule of its own: the last window must start inside the input or its
left padding, or it is dropped. `pool_length` follows PyTorch, `cs428_pool_length` the slide.

Receptive fields, which follow from the same kernel, stride and padding, are in receptive.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from ..errors import UserError

Pair = tuple[int, int]
AXES = ("height", "width")
KINDS = ("conv", "conv_transpose", "max_pool", "avg_pool")


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer, described by the arguments PyTorch's constructor takes.

    `padding` holds (before, after) per axis, because 'same' padding with an even kernel and
    explicit per-side padding are not symmetric.
    """
    kind: str = "conv"
    kernel_size: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: tuple[Pair, Pair] = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    groups: int = 1
    in_channels: int = 1
    out_channels: int = 1
    bias: bool = True
    output_padding: Pair = (0, 0)
    ceil_mode: bool = False
    same: bool = False  # padding was asked for as "same"; kept so the text can say so

    @property
    def is_pool(self) -> bool:
        return self.kind.endswith("_pool")

    def effective_kernel(self, axis: int) -> int:
        """A dilated kernel spans d(k-1)+1 input positions (003: 3x3 with d=2 sees 5x5)."""
        return self.dilation[axis] * (self.kernel_size[axis] - 1) + 1


# ----------------------------------------------------------------------------- parsing

def parse_size(value, name: str) -> Pair:
    """'5' -> (5, 5), '4x6' -> (4, 6); a size is one number or HxW."""
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(int(v) for v in value)
    parts = str(value).lower().replace(" ", "").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"{name} must be a whole number or HxW (like 3 or 3x5), got '{value}'.") from None
    if len(numbers) not in (1, 2):
        raise UserError(f"{name} must be a whole number or HxW (like 3 or 3x5), got '{value}'.")
    return (numbers[0], numbers[-1])


def whole(value, name: str) -> int:
    """A whole number from user text, or a one-sentence error naming the setting."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise UserError(f"{name} must be a whole number, got '{value}'.") from None


def same_padding(kernel: int, dilation: int) -> Pair:
    """PyTorch's 'same': d(k-1) padding in all, the odd one extra on the right/bottom."""
    total = dilation * (kernel - 1)
    return (total // 2, total - total // 2)


def parse_padding(value, kernel: Pair, dilation: Pair) -> tuple[tuple[Pair, Pair], bool]:
    """'same', 'valid', P, PHxPW, or four per-side numbers 'left,right,top,bottom' (F.pad's order)."""
    text = str(value).strip().lower()
    if text == "same":
        return (same_padding(kernel[0], dilation[0]), same_padding(kernel[1], dilation[1])), True
    if text == "valid":
        return ((0, 0), (0, 0)), False
    if "," in text:
        try:
            left, right, top, bottom = (int(p) for p in text.split(","))
        except ValueError:
            raise UserError(f"per-side padding takes four numbers left,right,top,bottom, got '{value}'.") from None
        return ((top, bottom), (left, right)), False
    ph, pw = parse_size(value, "padding")
    return ((ph, ph), (pw, pw)), False


def make_layer(kind: str = "conv", kernel_size="3", stride=None, padding="0", dilation="1",
               groups: int = 1, in_channels: int = 1, out_channels: int = 1, bias: bool = True,
               output_padding="0", ceil_mode: bool = False) -> Layer:
    """A Layer from user text; pooling's stride defaults to its kernel size, as in PyTorch."""
    if kind not in KINDS:
        raise UserError(f"unknown layer kind '{kind}'; choose one of: {', '.join(KINDS)}.")
    kernel = parse_size(kernel_size, "kernel size")
    dil = parse_size(dilation, "dilation")
    default_stride = kernel if kind.endswith("_pool") else (1, 1)
    pads, same = parse_padding(padding, kernel, dil)
    layer = Layer(kind, kernel, default_stride if stride is None else parse_size(stride, "stride"),
                  pads, dil, whole(groups, "groups"), whole(in_channels, "in_channels"),
                  whole(out_channels, "out_channels"), bool(bias),
                  parse_size(output_padding, "output padding"), bool(ceil_mode), same)
    if layer.is_pool:
        layer = replace(layer, out_channels=layer.in_channels, groups=1)
    return layer


# ----------------------------------------------------------------------------- sizes

def conv_length(n: int, k: int, s: int = 1, pad: Pair = (0, 0), d: int = 1) -> int:
    """floor((n + p_before + p_after - d(k-1) - 1)/s) + 1: windows that fit, counted."""
    return (n + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def conv_transpose_length(n: int, k: int, s: int = 1, p: int = 0, d: int = 1, op: int = 0) -> int:
    """(n-1)s - 2p + d(k-1) + output_padding + 1: the size a convolution would shrink back from."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def pool_length(n: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's pooling size; ceil_mode rounds up but never starts a window in the right padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def output_length(layer: Layer, n: int, axis: int) -> int:
    k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
    pad = layer.padding[axis]
    if layer.kind == "conv":
        return conv_length(n, k, s, pad, d)
    if layer.kind == "conv_transpose":
        return conv_transpose_length(n, k, s, pad[0], d, layer.output_padding[axis])
    return pool_length(n, k, s, pad[0], d, layer.ceil_mode)


def output_size(layer: Layer, size) -> Pair:
    """(H_out, W_out) for an input of `size` (int or (H, W)), after checking it is valid."""
    hw = parse_size(size, "input size")
    validate(layer, hw)
    return (output_length(layer, hw[0], 0), output_length(layer, hw[1], 1))


# ----------------------------------------------------------------------------- the lectures' own forms

def conclusion1(n: int, k: int) -> int:
    """CS428 (002) conclusion 1: no padding, stride 1."""
    return n - k + 1


def conclusion2(n: int, k: int, p: int) -> int:
    """CS428 (002) conclusion 2: padding p on each side, stride 1."""
    return n - k + 2 * p + 1


def conclusion3(n: int, k: int, p: int, s: int) -> int:
    """CS428 (002) conclusion 3: padding and stride."""
    return (n - k + 2 * p + s) // s


def cs428_pool_length(n: int, pool: int) -> int:
    """CS428 (002) conclusion 4: stride = pool size, no padding, rounded *up*."""
    return -(-n // pool)


def conclusion5(c_in: int, c_out: int, k_h: int, k_w: int) -> int:
    """CS428 (002) conclusion 5: one bias per kernel, hence the +1."""
    return c_out * (c_in * k_h * k_w + 1)


def lecture_output_size(n: int, f: int, s: int, p: int) -> Fraction:
    """003's O = (N + 2P - F)/S + 1, kept exact: a fraction means S does not divide N + 2P - F."""
    return Fraction(n + 2 * p - f, s) + 1


# ----------------------------------------------------------------------------- parameters and work

def param_count(layer: Layer) -> int:
    """Weights c_out * c_in/groups * k_h * k_w (transposed: the same product), plus c_out biases."""
    if layer.is_pool:
        return 0
    kh, kw = layer.kernel_size
    weights = layer.out_channels * (layer.in_channels // layer.groups) * kh * kw
    return weights + (layer.out_channels if layer.bias else 0)


def multiply_adds(layer: Layer, in_hw: Pair, out_hw: Pair) -> int:
    """One multiply-add per weight per output position (per input position when transposed)."""
    if layer.is_pool:
        return 0
    kh, kw = layer.kernel_size
    if layer.kind == "conv_transpose":
        return in_hw[0] * in_hw[1] * layer.in_channels * (layer.out_channels // layer.groups) * kh * kw
    return out_hw[0] * out_hw[1] * layer.out_channels * (layer.in_channels // layer.groups) * kh * kw



# ----------------------------------------------------------------------------- checks

def _check_positive(layer: Layer, hw: Pair) -> None:
    for name, values in (("input size", hw), ("kernel size", layer.kernel_size),
                         ("stride", layer.stride), ("dilation", layer.dilation),
                         ("groups", (layer.groups,)), ("in_channels", (layer.in_channels,)),
                         ("out_channels", (layer.out_channels,))):
        if min(values) < 1:
            raise UserError(f"{name} must be a positive whole number, got {min(values)}.")
    if min(min(p) for p in layer.padding) < 0 or min(layer.output_padding) < 0:
        raise UserError("padding and output padding cannot be negative.")


def _check_options(layer: Layer) -> None:
    """Combinations PyTorch refuses, refused here first with the reason."""
    symmetric = all(p[0] == p[1] for p in layer.padding)
    if layer.same and (layer.is_pool or layer.kind == "conv_transpose"):
        raise UserError("padding 'same' exists only for ordinary convolutions in PyTorch.")
    if layer.same and layer.stride != (1, 1):
        raise UserError("padding 'same' needs stride 1: PyTorch does not support it for strided convolutions.")
    if not symmetric and not layer.same and layer.kind != "conv":
        raise UserError("per-side padding works for convolutions only; pooling and transposed convolutions pad both sides equally.")
    if layer.ceil_mode and not layer.is_pool:
        raise UserError("ceil mode applies to pooling layers only.")
    if layer.output_padding != (0, 0) and layer.kind != "conv_transpose":
        raise UserError("output padding applies to transposed convolutions only.")
    if layer.kind == "avg_pool" and layer.dilation != (1, 1):
        raise UserError("average pooling has no dilation in PyTorch (AvgPool2d takes none).")


def _check_groups(layer: Layer) -> None:
    for name, channels in (("in_channels", layer.in_channels), ("out_channels", layer.out_channels)):
        if channels % layer.groups:
            raise UserError(f"{name} {channels} is not divisible by groups {layer.groups}.")


def _check_axis(layer: Layer, n: int, axis: int) -> None:
    k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
    before, after = layer.padding[axis]
    name = AXES[axis]
    if layer.kind == "conv_transpose":
        op = layer.output_padding[axis]
        if op >= max(s, d):
            raise UserError(f"output padding {op} must be smaller than the stride {s} or the dilation {d}.")
        if output_length(layer, n, axis) < 1:
            raise UserError(f"the padding {before} crops away the whole {name} of the transposed output.")
        return
    if layer.is_pool and before > k // 2:
        raise UserError(f"pooling padding {before} must be at most half the kernel size {k} (PyTorch's rule).")
    if output_length(layer, n, axis) < 1:
        raise UserError(f"the kernel spans {layer.effective_kernel(axis)} along the {name}, more than the "
                        f"padded input's {n + before + after}; the output would be empty.")


def validate(layer: Layer, hw: Pair) -> None:
    """Raise a one-sentence UserError for a layer PyTorch would refuse or that has no output."""
    _check_positive(layer, hw)
    _check_options(layer)
    if not layer.is_pool:
        _check_groups(layer)
    for axis in (0, 1):
        _check_axis(layer, hw[axis], axis)


# ----------------------------------------------------------------------------- formulas written out

TORCH_NAMES = {"conv": "Conv2d", "conv_transpose": "ConvTranspose2d",
               "max_pool": "MaxPool2d", "avg_pool": "AvgPool2d"}


def _pad_terms(pad: Pair) -> tuple[str, str]:
    if pad[0] == pad[1]:
        return "2p", f"2*{pad[0]}"
    return "p_before + p_after", f"{pad[0]} + {pad[1]}"


def _window_formula(layer: Layer, n: int, axis: int) -> str:
    """floor (or ceil) of the span over the stride, plus one, with the numbers put in."""
    k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
    pad = layer.padding[axis]
    symbol, numbers = _pad_terms(pad)
    span = n + pad[0] + pad[1] - d * (k - 1) - 1
    rounding = "ceil" if layer.ceil_mode else "floor"
    first = -(-span // s) + 1 if layer.ceil_mode else span // s + 1
    text = (f"{rounding}((n + {symbol} - d(k-1) - 1)/s) + 1 = "
            f"{rounding}(({n} + {numbers} - {d}*({k}-1) - 1)/{s}) + 1 = {rounding}({span}/{s}) + 1 = {first}")
    if first != output_length(layer, n, axis):
        text += (f"; but the last window would start at ({first}-1)*{s} = {(first - 1) * s}, not inside "
                 f"the input or its left padding (n + p = {n + pad[0]}), so PyTorch drops it: {first - 1}")
    return text


def axis_formula(layer: Layer, n: int, axis: int) -> str:
    if layer.kind != "conv_transpose":
        return _window_formula(layer, n, axis)
    k, s, d = layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis]
    p, op = layer.padding[axis][0], layer.output_padding[axis]
    return (f"(n-1)s - 2p + d(k-1) + output_padding + 1 = ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1"
            f" = {output_length(layer, n, axis)}")


def params_formula(layer: Layer) -> str:
    if layer.is_pool:
        return "pooling has no parameters: 0"
    kh, kw = layer.kernel_size
    bias = (" + 1", "") if layer.bias else ("", "")
    groups = f"/{layer.groups}" if layer.groups > 1 else ""
    return (f"c_out * (c_in/groups * k_h * k_w{bias[0]}) = {layer.out_channels} * "
            f"({layer.in_channels}{groups} * {kh} * {kw}{bias[0]}) = {param_count(layer)}")


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator} = {float(value):g}"


def _conv_lecture_notes(layer: Layer, n: int, axis: int) -> list[str]:
    """003's O = (N+2P-F)/S+1 and the matching CS428 conclusion, for a dilation-1 convolution."""
    k, s, p = layer.kernel_size[axis], layer.stride[axis], layer.padding[axis][0]
    exact = lecture_output_size(n, k, s, p)
    notes = [f"003: O = (N + 2P - F)/S + 1 = ({n} + 2*{p} - {k})/{s} + 1 = {_fraction_text(exact)}"]
    if exact.denominator != 1:
        notes[0] += (f"; S does not divide N + 2P - F, so PyTorch rounds down to {math.floor(exact)} and "
                     f"the last {(n + 2 * p - k) % s} row(s)/column(s) of the padded input are never covered")
    if s == 1 and p == 0:
        notes.append(f"CS428 conclusion 1: n - k + 1 = {n} - {k} + 1 = {conclusion1(n, k)}")
    elif s == 1:
        notes.append(f"CS428 conclusion 2: n - k + 2p + 1 = {n} - {k} + 2*{p} + 1 = {conclusion2(n, k, p)}")
    else:
        notes.append(f"CS428 conclusion 3: floor((n - k + 2p + s)/s) = floor(({n} - {k} + 2*{p} + {s})/{s})"
                     f" = {conclusion3(n, k, p, s)}")
    return notes


def _pool_lecture_notes(layer: Layer, n: int, axis: int) -> list[str]:
    """CS428 conclusion 4 rounds up; say when PyTorch agrees and how to make it agree."""
    k, s, p = layer.kernel_size[axis], layer.stride[axis], layer.padding[axis][0]
    if s != k or p != 0 or layer.dilation[axis] != 1:
        return ["CS428 conclusion 4 (ceil(n/pool)) assumes stride = pool size and no padding, "
                "so it does not apply to this layer"]
    lecture, torch_value = cs428_pool_length(n, k), output_length(layer, n, axis)
    note = f"CS428 conclusion 4: ceil(n/pool) = ceil({n}/{k}) = {lecture}"
    if lecture == torch_value:
        reason = "ceil_mode=True always matches it" if layer.ceil_mode else f"{k} divides {n}"
        return [note + f"; PyTorch agrees ({reason})"]
    return [note + f"; PyTorch's default floor mode gives {torch_value} (the last {n % k} row(s)/column(s) "
            f"fit no whole window); ceil_mode=True gives the lecture's {lecture}"]


def lecture_notes(layer: Layer, hw: Pair) -> list[str]:
    """The lectures' own formulas for this layer, with where they agree with PyTorch."""
    axes = (0,) if _same_axes(layer, hw) else (0, 1)
    notes = []
    for axis in axes:
        label = "" if len(axes) == 1 else f"{AXES[axis]}: "
        if layer.is_pool:
            notes += [label + t for t in _pool_lecture_notes(layer, hw[axis], axis)]
        elif layer.kind == "conv" and layer.dilation[axis] == 1 and len(set(layer.padding[axis])) == 1:
            notes += [label + t for t in _conv_lecture_notes(layer, hw[axis], axis)]
    if layer.kind == "conv" and layer.dilation != (1, 1):
        notes.append(f"the lectures' formulas assume dilation 1; a dilated kernel acts like one of size "
                     f"F = d(k-1)+1 = {layer.effective_kernel(0)}x{layer.effective_kernel(1)} with only "
                     f"{layer.kernel_size[0] * layer.kernel_size[1]} weights (003, dilated convolutions)")
    if not layer.is_pool and layer.groups == 1 and layer.bias:
        kh, kw = layer.kernel_size
        notes.append(f"CS428 conclusion 5: c_out(c_in k_h k_w + 1) = {layer.out_channels}*({layer.in_channels}"
                     f"*{kh}*{kw} + 1) = {conclusion5(layer.in_channels, layer.out_channels, kh, kw)}; "
                     f"the +1 is one bias per kernel (per output channel: {layer.out_channels} in all), "
                     f"not one per kernel weight as the slide's 'Why +1?' says")
    if layer.is_pool:
        notes.append(f"PyTorch: nn.{TORCH_NAMES[layer.kind]}(kernel_size, stride=None, padding=0): pooling "
                     f"takes no channel count and keeps the channels; 004's takeaway "
                     f"'nn.Avg/MaxPool2d(in_channels, kernel_size)' would pass in_channels as the window")
    return notes


def _same_axes(layer: Layer, hw: Pair) -> bool:
    def axis(a):
        return (hw[a], layer.kernel_size[a], layer.stride[a], layer.padding[a], layer.dilation[a],
                layer.output_padding[a])
    return axis(0) == axis(1)


def describe(layer: Layer, size) -> dict:
    """Output size, parameters and multiply-adds of `layer` on `size`, each formula written out."""
    hw = parse_size(size, "input size")
    out = output_size(layer, hw)
    formula = {AXES[a]: axis_formula(layer, hw[a], a) for a in (0, 1)}
    formula["params"] = params_formula(layer)
    return {"layer": TORCH_NAMES[layer.kind], "input_size": [layer.in_channels, *hw],
            "output_size": list(out), "output_shape": [layer.out_channels, *out],
            "params": param_count(layer), "macs": multiply_adds(layer, hw, out),
            "formula": formula, "lecture": lecture_notes(layer, hw),
            "options": _options(layer)}


def _options(layer: Layer) -> dict:
    pads = layer.padding
    padding = "same" if layer.same else (
        [pads[0][0], pads[1][0]] if all(p[0] == p[1] for p in pads) else [pads[1][0], pads[1][1], pads[0][0], pads[0][1]])
    options = {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride), "padding": padding,
               "dilation": list(layer.dilation)}
    if layer.is_pool:
        options["ceil_mode"] = layer.ceil_mode
    else:
        options.update(in_channels=layer.in_channels, out_channels=layer.out_channels,
                       groups=layer.groups, bias=layer.bias)
    if layer.kind == "conv_transpose":
        options["output_padding"] = list(layer.output_padding)
    return options


def conv_shape(input_size, kernel_size="3", stride=None, padding="0", dilation="1", groups=1,
               in_channels=1, out_channels=1, transposed=False, output_padding="0", pool=None,
               ceil_mode=False, bias=True) -> dict:
    """`cnnlab conv-shape`: one layer from the command line's words, described."""
    if pool not in (None, "max", "avg"):
        raise UserError(f"unknown pooling '{pool}'; choose max or avg.")
    kind = f"{pool}_pool" if pool else ("conv_transpose" if transposed else "conv")
    if pool and transposed:
        raise UserError("choose either --pool or --transposed, not both.")
    layer = make_layer(kind, kernel_size, stride, padding, dilation, groups, in_channels,
                       out_channels, bias, output_padding, ceil_mode)
    return describe(layer, input_size)


def _size_text(values) -> str:
    """[3, 3] -> '3', [4, 6] -> '4x6': a square size reads as the slides write it."""
    values = list(values)
    if len(values) == 2 and values[0] == values[1]:
        return str(values[0])
    return "x".join(str(v) for v in values)


def format_description(result: dict) -> str:
    """The human text of `describe`: formulas first, then what the lectures say."""
    options = ", ".join(f"{k}={_size_text(v) if isinstance(v, list) else v}" for k, v in result["options"].items())
    lines = [f"{result['layer']}({options}) on a {'x'.join(map(str, result['input_size']))} input",
             f"  output height: {result['formula']['height']}"]
    if result["formula"]["width"] != result["formula"]["height"]:
        lines.append(f"  output width:  {result['formula']['width']}")
    else:
        lines.append("  output width:  the same")
    lines += [f"  output shape:  {'x'.join(map(str, result['output_shape']))}",
              f"  parameters:    {result['formula']['params']}",
              f"  multiply-adds: {result['macs']:,}"]
    if result["lecture"]:
        lines.append("In the lectures' notation:")
        lines += [f"  {note}" for note in result["lecture"]]
    return "\n".join(lines)
