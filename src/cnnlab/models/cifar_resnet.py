"""The CIFAR-10 ResNets of He et al. 2016, section 4.2: ResNet-20, 32, 44 and 56.

    output map size   32x32   16x16   8x8
    # layers          1+2n    2n      2n      (6n + 2 in all, with the final dense layer)
    # filters         16      32      64

A 3x3 convolution with 16 filters, three stages of n BasicBlocks, global average pooling, a
10-way dense layer. Where a stage doubles the filters and halves the map, the paper's option A
shortcut subsamples the identity and pads the new channels with zeros, adding no parameters:
ResNet-20 has 0.27M (269,722). shortcut="B" uses 1x1 projections instead.

plain20/32/44/56 are the same stages with no shortcut at all (shortcut="none"; the paper's
'plain' networks, Fig. 6): the same layers and parameters, so the gap in training between a
plain network and its residual twin is the shortcut's doing alone (`cnnlab explain depth`).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..layers import make_norm
from .base import FeaturesHeadModel, choose
from .registry import register_model
from .resnet import BasicBlock, init_weights, make_stage, projection

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class PadShortcut(nn.Module):
    """Option A: identity on every `stride`-th pixel, zero channels appended."""

    def __init__(self, extra_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra_channels, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


def pad_shortcut(inplanes: int, outplanes: int, stride: int, norm) -> nn.Module:
    return PadShortcut(outplanes - inplanes, stride)


def no_shortcut(inplanes: int, outplanes: int, stride: int, norm) -> None:
    return None


class PlainBlock(BasicBlock):
    """A BasicBlock without its shortcut: two convolutions stacked, nothing added back."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


SHORTCUTS = {"A": pad_shortcut, "B": projection, "none": no_shortcut}


class CifarResNet(FeaturesHeadModel):
    def __init__(self, n: int, /, num_classes: int = 10, in_channels: int = 3, norm="batch",
                 shortcut: str = "A"):
        super().__init__()
        short = choose("shortcut option", shortcut, SHORTCUTS)
        block = PlainBlock if shortcut == "none" else BasicBlock
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = make_norm(norm, 16)
        self.relu = nn.ReLU()
        self.layer1 = make_stage(block, 16, 16, n, 1, norm, short)
        self.layer2 = make_stage(block, 16, 32, n, 2, norm, short)
        self.layer3 = make_stage(block, 32, 64, n, 2, norm, short)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def forward_features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, features):
        return self.fc(self.avgpool(features).flatten(1))


_CIFAR = dict(family="resnet", architecture=CifarResNet, input_size=(3, 32, 32), num_classes=10,
              mean=CIFAR10_MEAN, std=CIFAR10_STD,
              paper="He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition, sec. 4.2")


@register_model(**_CIFAR)
def resnet20(**kw):
    return CifarResNet(3, **kw)


@register_model(**_CIFAR)
def resnet32(**kw):
    return CifarResNet(5, **kw)


@register_model(**_CIFAR)
def resnet44(**kw):
    return CifarResNet(7, **kw)


@register_model(**_CIFAR)
def resnet56(**kw):
    return CifarResNet(9, **kw)


# The plain twins (He et al. 2016, Fig. 6 and table 6): the same stages without shortcuts.
# Family "resnet" still: the same builder and options, and the paper they come from.
_PLAIN = dict(_CIFAR,
              paper="He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition, "
                    "sec. 4.2 (the plain networks)")


@register_model(**_PLAIN)
def plain20(**kw):
    return CifarResNet(3, **{"shortcut": "none", **kw})


@register_model(**_PLAIN)
def plain32(**kw):
    return CifarResNet(5, **{"shortcut": "none", **kw})


@register_model(**_PLAIN)
def plain44(**kw):
    return CifarResNet(7, **{"shortcut": "none", **kw})


@register_model(**_PLAIN)
def plain56(**kw):
    return CifarResNet(9, **{"shortcut": "none", **kw})
