"""Receptive fields: how much of the input one unit of a feature map sees (CS428 lecture 4, 002;
IN3063 10.A, 000: 'receptive fields become larger and larger'; 004: a 2x2 pool then a 2x2
convolution sees 4x4).

Three numbers per axis describe a feature map, all in input pixels: the receptive field `rf`,
the `jump` between neighbouring units (the product of the strides so far) and `start`, the
centre of the first unit's window. A layer with effective kernel k = d(k-1)+1, stride s and
left padding p maps them to

    rf + (k-1)*jump,    jump*s,    start + ((k-1)/2 - p)*jump

Fractions keep half pixels (a 2x2 pool's centre) and fractional jumps (after a transposed
convolution) exact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from fractions import Fraction

from .arithmetic import Layer

Pair = tuple[int, int]
ONE, ZERO = Fraction(1), Fraction(0)
UNKNOWN = "unknown"  # what a feature map sees after an operation with no formula: never guessed


@dataclass(frozen=True)
class Geometry:
    rf: tuple[Fraction, Fraction] = (ONE, ONE)
    jump: tuple[Fraction, Fraction] = (ONE, ONE)
    start: tuple[Fraction, Fraction] = (ZERO, ZERO)

    def through(self, kernel: Pair, stride, pad_before: Pair) -> "Geometry":
        """A window spanning `kernel` units (dilation included) every `stride` units."""
        axes = [(self.rf[a] + (kernel[a] - 1) * self.jump[a],
                 self.jump[a] * Fraction(stride[a]),
                 self.start[a] + (Fraction(kernel[a] - 1, 2) - pad_before[a]) * self.jump[a])
                for a in (0, 1)]
        return Geometry(*zip(*axes))

    def through_transposed(self, kernel: Pair, stride: Pair, pad: Pair) -> "Geometry":
        """An output of a transposed convolution sums the inputs whose scattered kernels reach it:
        at most floor((k-1)/s) + 1 neighbours, so that many more jumps of receptive field (the
        largest over output positions); its units sit s times closer together than the input's."""
        axes = [(self.rf[a] + ((kernel[a] - 1) // stride[a]) * self.jump[a],
                 self.jump[a] / stride[a],
                 self.start[a] + (pad[a] - Fraction(kernel[a] - 1, 2)) * self.jump[a] / stride[a])
                for a in (0, 1)]
        return Geometry(*zip(*axes))

    def padded(self, pad_before: Pair) -> "Geometry":
        """Explicit padding (F.pad) moves unit 0 out into the border; it sees nothing new."""
        return replace(self, start=tuple(self.start[a] - pad_before[a] * self.jump[a] for a in (0, 1)))

    def to_json(self) -> dict:
        return {key: [number(v) for v in values] for key, values in asdict(self).items()}


def number(value):
    """A Fraction as the plainest JSON number: 7 rather than 7.0, 15.5 rather than 31/2."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def merge(geometries: list[Geometry]) -> Geometry:
    """Where paths meet (a residual sum, an inception concatenation) a unit sees the union of what
    each path sees: the hull of their windows. When the paths are centred alike, as in ResNet and
    Inception blocks, that is the largest receptive field among the paths."""
    first = geometries[0]
    if all(g == first for g in geometries):
        return first
    rf, jump, start = [], [], []
    for a in (0, 1):
        low = min(g.start[a] - (g.rf[a] - 1) / 2 for g in geometries)
        high = max(g.start[a] + (g.rf[a] - 1) / 2 for g in geometries)
        rf.append(high - low + 1)
        start.append((low + high) / 2)
        jump.append(max(g.jump[a] for g in geometries))  # equal unless a path was resampled
    return Geometry(tuple(rf), tuple(jump), tuple(start))


def after_layer(layer: Layer, geometry: Geometry) -> Geometry:
    kernel = (layer.effective_kernel(0), layer.effective_kernel(1))
    pad_before = (layer.padding[0][0], layer.padding[1][0])
    if layer.kind == "conv_transpose":
        return geometry.through_transposed(kernel, layer.stride, pad_before)
    return geometry.through(kernel, layer.stride, pad_before)


def adaptive_window(n_in: int, n_out: int) -> tuple[int, Fraction, Fraction]:
    """Adaptive pooling's bins run from floor(i*n/m) to ceil((i+1)*n/m): the widest bin, the
    stride n/m and the centre of bin 0, so it can be treated like any other window."""
    widest = max(-(-(i + 1) * n_in // n_out) - (i * n_in // n_out) for i in range(n_out))
    first = -(-n_in // n_out)
    return widest, Fraction(n_in, n_out), Fraction(first - 1, 2)


def after_adaptive(geometry: Geometry, in_hw: Pair, out_hw: Pair) -> Geometry:
    axes = []
    for a in (0, 1):
        widest, stride, centre = adaptive_window(in_hw[a], out_hw[a])
        axes.append((geometry.rf[a] + (widest - 1) * geometry.jump[a], geometry.jump[a] * stride,
                     geometry.start[a] + centre * geometry.jump[a]))
    return Geometry(*zip(*axes))


def receptive_fields(layers: list[Layer]) -> list[Geometry]:
    """Geometry after each layer of a plain stack, starting from single input pixels."""
    geometry, out = Geometry(), []
    for layer in layers:
        geometry = after_layer(layer, geometry)
        out.append(geometry)
    return out
