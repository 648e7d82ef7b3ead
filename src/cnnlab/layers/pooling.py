"""Pooling: summarising a patch instead of regressing on it (004, 001, 002).

Pooling 'functions exactly like a convolution' but applies a summary (max or mean) instead of a
local linear regression, so it has no parameters; it lets later convolutions see more of the
image without bigger kernels. Global and adaptive pooling (001) fix the output size instead of
the window, which is what lets one classifier take inputs of any size.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import unknown_name


def max_pool(kernel_size: int = 2, stride: int | None = None, padding: int = 0,
             ceil_mode: bool = False) -> nn.MaxPool2d:
    """Each window's largest value; stride defaults to the window (004: 'PyTorch uses
    kernel_size for the stride if we don't specify it'). AlexNet's 3x3 stride-2 windows overlap."""
    return nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)


def avg_pool(kernel_size: int = 2, stride: int | None = None, padding: int = 0,
             ceil_mode: bool = False) -> nn.AvgPool2d:
    """Each window's mean (LeNet's subsampling, 004)."""
    return nn.AvgPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)


class GlobalAvgPool2d(nn.Module):
    """001: 'the global average of the entire picture' -- one number per channel, N x C
    (flattened) or N x C x 1 x 1. GoogLeNet and ResNet end with it instead of big dense layers."""

    def __init__(self, flatten: bool = True):
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=not self.flatten)


def adaptive_avg_pool(output_size) -> nn.AdaptiveAvgPool2d:
    """001 adaptive pooling: window and stride chosen per input so the output is
    `output_size` (VGG's 7x7 before its classifier)."""
    return nn.AdaptiveAvgPool2d(output_size)


def adaptive_max_pool(output_size) -> nn.AdaptiveMaxPool2d:
    return nn.AdaptiveMaxPool2d(output_size)


POOLS = {"max": max_pool, "avg": avg_pool, "global_avg": GlobalAvgPool2d,
         "adaptive_avg": adaptive_avg_pool, "adaptive_max": adaptive_max_pool}


def make_pool(kind: str, *args, **kwargs) -> nn.Module:
    """A pooling layer by name, e.g. make_pool("max", 3, stride=2)."""
    if kind not in POOLS:
        raise unknown_name("pooling kind", kind, POOLS)
    return POOLS[kind](*args, **kwargs)
