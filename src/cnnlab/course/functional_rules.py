"""The formulas behind each spatial torch function, applied to one traced call.

`cnnlab summary` meets every convolution and pooling as the functional call PyTorch's modules
make (Conv2d.forward calls F.conv2d). Each rule here rebuilds the layer from the call's own
arguments, predicts the output size with `course.arithmetic`, compares it with the tensor the
call really returned, and says how many multiply-adds the call did and how it changes a
receptive field (`course.receptive`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .arithmetic import TORCH_NAMES, Layer, multiply_adds, output_size, parse_padding
from .receptive import UNKNOWN, Geometry, after_adaptive, after_layer


class Disagreement(Exception):
    """The formula's output size is not the size the call produced."""


@dataclass
class Step:
    macs: int = 0
    transform: Callable[[Geometry], Geometry] | None = None  # None: the geometry passes unchanged


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    return values * 2 if len(values) == 1 else values


def _hw(tensor) -> tuple[int, int]:
    return tuple(tensor.shape[-2:])


def _checked(layer: Layer, source, out) -> Step:
    """Predict, compare, and describe one layer call."""
    predicted = output_size(layer, _hw(source))
    channels = layer.out_channels if not layer.is_pool else source.shape[-3]
    if predicted != _hw(out) or out.shape[-3] != channels:
        raise Disagreement(f"{TORCH_NAMES[layer.kind]} formula gives {channels}x{predicted[0]}x{predicted[1]}, "
                           f"the forward pass gave {'x'.join(map(str, out.shape[-3:]))}")
    return Step(multiply_adds(layer, _hw(source), _hw(out)), lambda g: after_layer(layer, g))


def _padding(padding, kernel, dilation):
    if isinstance(padding, str):
        return parse_padding(padding, kernel, dilation)
    ph, pw = _pair(padding)
    return ((ph, ph), (pw, pw)), False


def conv2d(source, out, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Step:
    kernel, dil = _pair(weight.shape[-2:]), _pair(dilation)
    pads, same = _padding(padding, kernel, dil)
    layer = Layer("conv", kernel, _pair(stride), pads, dil, groups, source.shape[-3], weight.shape[0],
                  bias is not None, same=same)
    return _checked(layer, source, out)


def conv_transpose2d(source, out, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Step:
    kernel, (ph, pw) = _pair(weight.shape[-2:]), _pair(padding)
    layer = Layer("conv_transpose", kernel, _pair(stride), ((ph, ph), (pw, pw)), _pair(dilation),
                  groups, source.shape[-3], weight.shape[1] * groups, bias is not None,
                  _pair(output_padding))
    return _checked(layer, source, out)


def _pool(kind, source, out, kernel_size, stride, padding, dilation, ceil_mode) -> Step:
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride)
    ph, pw = _pair(padding)
    channels = source.shape[-3]
    layer = Layer(kind, kernel, stride, ((ph, ph), (pw, pw)), _pair(dilation), 1, channels, channels,
                  ceil_mode=bool(ceil_mode))
    return _checked(layer, source, out)


def max_pool2d(source, out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False) -> Step:
    return _pool("max_pool", source, out, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool2d(source, out, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Step:
    return _pool("avg_pool", source, out, kernel_size, stride, padding, 1, ceil_mode)


def adaptive_pool2d(source, out, output_size, return_indices=False) -> Step:
    """Adaptive pooling promises an exact output size; None keeps that axis's input size."""
    wanted = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    wanted = tuple(n if w is None else int(w) for w, n in zip(wanted, _hw(source)))
    if wanted != _hw(out):
        raise Disagreement(f"adaptive pooling was asked for {wanted}, the forward pass gave {_hw(out)}")
    in_hw, out_hw = _hw(source), _hw(out)
    return Step(0, lambda g: after_adaptive(g, in_hw, out_hw))


def pad(source, out, pad, mode="constant", value=None) -> Step:
    """F.pad lists amounts from the last axis backwards: left, right, top, bottom."""
    left, right, top, bottom = (list(pad) + [0, 0, 0, 0])[:4]
    predicted = (source.shape[-2] + top + bottom, source.shape[-1] + left + right)
    if predicted != _hw(out):
        raise Disagreement(f"padding by {list(pad)} should give {predicted}, the forward pass gave {_hw(out)}")
    return Step(0, lambda g: g.padded((top, left)))


def linear(source, out, weight, bias=None) -> Step:
    """One multiply-add per weight per input vector; a Linear over a feature map's last axis
    mixes a whole row, which no window formula describes."""
    vectors = out.numel() // out.shape[-1] // (source.shape[0] if source.dim() > 1 else 1)
    return Step(weight.numel() * vectors, lambda g: UNKNOWN)


def _spatial_slices(index, dims: int):
    """The slices an index applies to the last two axes, or None if it does more than slice."""
    index = index if isinstance(index, tuple) else (index,)
    if any(not isinstance(i, slice) and i is not Ellipsis for i in index) or list(index).count(Ellipsis) > 1:
        return None
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (dims - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (dims - len(index))
    return index[-2:]


def getitem(source, out, index) -> Step:
    """x[:, :, ::2, ::2], the ResNet paper's parameter-free shortcut, is a 1x1 window with
    stride 2; any other indexing that keeps the map's size keeps its geometry."""
    slices = _spatial_slices(index, source.dim()) if source.dim() >= 4 else None
    if slices is None:
        return Step(0, None if _hw(out) == _hw(source) else (lambda g: UNKNOWN))
    ranges = [range(*sl.indices(n)) for sl, n in zip(slices, _hw(source))]
    if tuple(len(r) for r in ranges) != _hw(out):
        raise Disagreement(f"slicing {index} should give {tuple(len(r) for r in ranges)}, the forward pass gave {_hw(out)}")
    if any(r.step < 0 for r in ranges):
        return Step(0, lambda g: UNKNOWN)  # a flip reverses the axis: no longer one start and jump
    first = tuple(r.start for r in ranges)
    return Step(0, lambda g: g.padded((-first[0], -first[1])).through((1, 1), (ranges[0].step, ranges[1].step), (0, 0)))


SPATIAL = {F.conv2d: conv2d, F.conv_transpose2d: conv_transpose2d, F.max_pool2d: max_pool2d,
           F.max_pool2d_with_indices: max_pool2d, F.avg_pool2d: avg_pool2d,
           F.adaptive_avg_pool2d: adaptive_pool2d, F.adaptive_max_pool2d: adaptive_pool2d,
           F.adaptive_max_pool2d_with_indices: adaptive_pool2d, F.pad: pad}
RULES = {**SPATIAL, F.linear: linear, torch.Tensor.__getitem__: getitem}


def is_spatial(func) -> bool:
    return func in SPATIAL
