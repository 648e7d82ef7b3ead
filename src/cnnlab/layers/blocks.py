"""Building blocks made of the layers: activations by name, and convolution -> norm -> activation."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import unknown_name
from .conv import same_padding
from .norm import make_norm

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU,
               "leaky_relu": nn.LeakyReLU, "none": nn.Identity}


def make_activation(name: str) -> nn.Module:
    """002 'ReLU', 004 'sigmoid', CS428's tanh ... a fresh module for each use."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


class ConvNormAct(nn.Sequential):
    """The unit every modern CNN repeats: convolution, normalisation, non-linearity (003:
    batch norm after the convolution, before the ReLU). Children are named conv, norm, act.

    The convolution has a bias only without a norm: the norm subtracts the mean, which would
    cancel any bias, and its own shift (beta) takes the bias's place.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, dilation: int = 1, groups: int = 1,
                 norm: str = "batch", activation: str = "relu", padding_mode: str = "zeros"):
        padding = same_padding(kernel_size, dilation) if padding is None else padding
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias=norm == "none", padding_mode=padding_mode)
        super().__init__(OrderedDict(conv=conv, norm=make_norm(norm, out_channels),
                                     act=make_activation(activation)))
