"""A small fast-training CIFAR network, after the one in Keller Jordan's airbench (2024).

    whitening 2x2 conv (fitted, not learned)   3 -> 24    32x32 -> 31x31
    conv group 1                              24 -> 64    31x31 -> 15x15
    conv group 2                              64 -> 128   15x15 -> 7x7
    conv group 3                             128 -> 256   7x7   -> 3x3
    global max pool, linear head, logits scaled by 1/9

A conv group is conv 3x3 -> max pool 2 -> batch norm -> GELU -> conv 3x3 -> batch norm -> GELU:
pooling straight after the first convolution does the later layers' work at a quarter of
the pixels. About 1.2 M parameters (airbench94's widths 64/256/256 give 2 M); used with
`--recipe cifar10-fast`, which also sets the training that makes it fast.
"""
from __future__ import annotations

from torch import nn

from ..layers import make_norm
from ..layers.whitening import WhiteningConv
from .base import FeaturesHeadModel
from .cifar_resnet import CIFAR10_MEAN, CIFAR10_STD
from .registry import register_model

# Scaling the logits down keeps the early softmax far from saturation at the recipe's high
# learning rate (airbench uses the same 1/9; Page's ResNet 1/8).
LOGIT_SCALE = 1 / 9


def conv_group(in_channels: int, out_channels: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.MaxPool2d(2),
        make_norm(norm, out_channels), nn.GELU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        make_norm(norm, out_channels), nn.GELU())


class CifarFast(FeaturesHeadModel):
    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 widths: tuple = (64, 128, 256), norm: str = "batch"):
        super().__init__()
        self.whiten = WhiteningConv(in_channels, kernel_size=2)
        channels = [self.whiten.out_channels, *widths]
        self.features = nn.Sequential(self.whiten, nn.GELU(), *(
            conv_group(a, b, norm) for a, b in zip(channels, channels[1:])))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)

    def forward_head(self, features):
        return self.fc(self.pool(features).flatten(1)) * LOGIT_SCALE


@register_model(family="cifar_fast", architecture=CifarFast, input_size=(3, 32, 32),
                num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                paper="Jordan 2024, 94% on CIFAR-10 in 3.29 seconds on a single GPU (airbench); "
                      "Page 2018, How to train your ResNet")
def cifar_fast(**kw):
    return CifarFast(**kw)
