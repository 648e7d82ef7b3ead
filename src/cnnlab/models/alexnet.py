"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), the 003/000 slides' ImageNet winner.

Five convolutions, then three dense layers, with the paper's ideas: ReLU, local response
normalisation after conv1 and conv2, overlapping 3x3 stride-2 max-pooling, and dropout in the
classifier. The paper split every layer over two GPUs; conv2, conv4 and conv5 only saw their own
GPU's half, which is a grouped convolution with groups=2 -- 60,965,224 parameters.

layout="torchvision" is the single-GPU variant torchvision ships ('one weird trick', 64-192-384-
256-256 filters, no LRN, 61,100,840 parameters); its weights load into it.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

from torch import nn

from ..layers import GlobalAvgPool2d, LocalResponseNorm
from .base import IMAGENET, FeaturesHeadModel, check_stem, choose
from .registry import register_model


class ConvSpec(NamedTuple):
    """One row of the architecture table."""
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    lrn: bool = False            # response normalisation after this layer's ReLU
    pool: int | None = None      # a 3x3 stride-2 max-pool follows, with this padding


LAYOUTS = {
    "paper": [ConvSpec(96, 11, 4, 2, lrn=True, pool=0),
              ConvSpec(256, 5, 1, 2, groups=2, lrn=True, pool=0),
              ConvSpec(384, 3, 1, 1),
              ConvSpec(384, 3, 1, 1, groups=2),
              ConvSpec(256, 3, 1, 1, groups=2, pool=0)],
    "torchvision": [ConvSpec(64, 11, 4, 2, pool=0),
                    ConvSpec(192, 5, 1, 2, pool=0),
                    ConvSpec(384, 3, 1, 1),
                    ConvSpec(256, 3, 1, 1),
                    ConvSpec(256, 3, 1, 1, pool=0)],
}
SMALL_HIDDEN = 512  # dense width for small inputs: a 256-number pooled vector needs no 4096


def small_stem(convs: Sequence[ConvSpec]) -> list[ConvSpec]:
    """For small inputs: a 3x3 stride-1 first layer and stride 1 throughout, so that only the
    three max-pools shrink the image (AlexNet: 32 -> 15 -> 7 -> 3; 16 -> 7 -> 3 -> 1)."""
    first = convs[0]._replace(kernel_size=3, stride=1, padding=1)
    return [first] + [c._replace(stride=1, padding=c.kernel_size // 2) for c in convs[1:]]


def conv_layers(convs: Sequence[ConvSpec], in_channels: int, lrn: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in convs:
        layers += [nn.Conv2d(in_channels, spec.out_channels, spec.kernel_size, spec.stride,
                             spec.padding, groups=spec.groups),
                   # Not in-place: hooks that record a convolution's output (feature maps,
                   # summaries) must not see it overwritten by the ReLU.
                   nn.ReLU()]
        if lrn and spec.lrn:
            layers.append(LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
        if spec.pool is not None:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=spec.pool))
        in_channels = spec.out_channels
    return nn.Sequential(*layers)


def dense_head(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout before each hidden dense layer, as the paper (and torchvision's layout) has it."""
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes))


class AlexNet(FeaturesHeadModel):
    """`features` (convolutions), `avgpool` to a 6x6 grid, `classifier` -- torchvision's names.

    stem="small" runs images of 16 to about 64 pixels (CIFAR's 32x32): small_stem's
    convolutions, then global average pooling and 512-wide dense layers instead of 6x6
    pooling and 4096.
    """

    def __init__(self, convs: Sequence[ConvSpec], /, num_classes: int = 1000, in_channels: int = 3,
                 lrn: bool = True, dropout: float = 0.5, stem: str = "imagenet"):
        super().__init__()
        small = check_stem(stem)
        convs = small_stem(convs) if small else list(convs)
        self.features = conv_layers(convs, in_channels, lrn)
        self.avgpool = GlobalAvgPool2d(flatten=False) if small else nn.AdaptiveAvgPool2d(6)
        cells = 1 if small else 6 * 6
        hidden = SMALL_HIDDEN if small else 4096
        self.classifier = dense_head(convs[-1].out_channels * cells, hidden, num_classes, dropout)

    def forward_head(self, features):
        return self.classifier(self.avgpool(features).flatten(1))


@register_model(family="alexnet", architecture=AlexNet, torchvision={"layout": "torchvision"},
                paper="Krizhevsky, Sutskever & Hinton 2012, ImageNet classification with deep "
                      "convolutional neural networks", small_input_size=(3, 16, 16), **IMAGENET)
def alexnet(layout: str = "paper", lrn: bool | None = None, **kwargs):
    """lrn defaults to the layout's own: on for the paper, off for torchvision's."""
    lrn = layout == "paper" if lrn is None else lrn
    return AlexNet(choose("AlexNet layout", layout, LAYOUTS), lrn=lrn, **kwargs)
