"""GoogLeNet, Inception v1 (Szegedy et al. 2015, 'Going deeper with convolutions'; 003).

The Inception module with dimension reductions runs four branches side by side and stacks
their outputs: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then 1x1. The 1x1 convolutions
(003: 'each filter has size 1x1x64 and performs a 64-dimensional dot product') shrink the
channels before the expensive kernels. Two auxiliary classifiers, after inception 4a and 4d,
add their losses (weight 0.3) during training only, to push gradient into the middle layers.

layout="paper" (default) has the paper's 5x5 kernels. torchvision's GoogLeNet uses 3x3 there
(a known discrepancy it keeps for its weights): layout="torchvision" reproduces it, its module
names and its 6,624,904 parameters without aux heads. Both use batch norm (eps 1e-3) after each
convolution as torchvision does; the 2014 paper predates batch norm, and norm="none" removes it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import make_norm
from .base import IMAGENET, AuxOutputs, FeaturesHeadModel, check_stem, choose
from .registry import register_model

# in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj -- the paper's Table 1.
INCEPTIONS = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128), "5b": (832, 384, 192, 384, 48, 128, 128),
}
WIDE_KERNEL = {"paper": 5, "torchvision": 3}
TRUNK = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
         "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
         "maxpool4", "inception5a", "inception5b")
AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}
AUX_WEIGHT = 0.3


class BasicConv2d(nn.Module):
    """Convolution, norm, ReLU -- named conv and bn as in torchvision, whatever the norm."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", **conv_args):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=norm == "none", **conv_args)
        self.bn = make_norm(norm, out_channels, eps=1e-3)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 wide_kernel: int = 5, norm: str = "batch"):
        super().__init__()
        conv = lambda i, o, k: BasicConv2d(i, o, norm, kernel_size=k, padding=k // 2)  # noqa: E731
        self.branch1 = conv(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, 1),
                                     conv(ch5x5red, ch5x5, wide_kernel))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv(in_channels, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """The side classifier: 4x4 average pool, 1x1 conv to 128, dense 1024, dropout 0.7."""

    def __init__(self, in_channels: int, num_classes: int, norm: str = "batch"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_channels, 128, norm, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(FeaturesHeadModel):
    """The stem, nine Inception modules in three stages, global average pooling, one dense layer.

    stem="small" is for small inputs (8x8 and up; CIFAR's 32x32): a 3x3 stride-1 first
    convolution and no first max-pool, so for 32x32 images the Inception stages run at 16, 8
    and 4 pixels instead of 28, 14 and 7.
    transform_input re-normalises ImageNet-normalised input to the [-1, 1] scaling that the
    original (torchvision) weights were trained with.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, layout: str = "paper",
                 aux_logits: bool = True, norm: str = "batch", dropout: float = 0.4,
                 stem: str = "imagenet", transform_input: bool = False):
        super().__init__()
        small = check_stem(stem)
        wide = choose("GoogLeNet layout", layout, WIDE_KERNEL)
        self.transform_input = transform_input
        self.conv1 = (BasicConv2d(in_channels, 64, norm, kernel_size=3, padding=1) if small else
                      BasicConv2d(in_channels, 64, norm, kernel_size=7, stride=2, padding=3))
        self.maxpool1 = nn.Identity() if small else nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, norm, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, norm, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        inception = lambda name: Inception(*INCEPTIONS[name], wide_kernel=wide, norm=norm)  # noqa: E731
        self.inception3a, self.inception3b = inception("3a"), inception("3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a, self.inception4b = inception("4a"), inception("4b")
        self.inception4c, self.inception4d = inception("4c"), inception("4d")
        self.inception4e = inception("4e")
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a, self.inception5b = inception("5a"), inception("5b")
        self.aux1 = InceptionAux(512, num_classes, norm) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, norm) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)

    def _transform_input(self, x):
        if not self.transform_input:
            return x
        mean = x.new_tensor(IMAGENET["mean"]).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET["std"]).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def _trunk(self, x):
        """Features, plus the side classifiers' logits when training with them."""
        aux = []
        for name in TRUNK:
            x = getattr(self, name)(x)
            side = AUX_AFTER.get(name)
            if side and self.training and getattr(self, side) is not None:
                aux.append(getattr(self, side)(x))
        return x, aux

    def forward_features(self, x):
        return self._trunk(self._transform_input(x))[0]

    def forward_head(self, features):
        return self.fc(self.dropout(self.avgpool(features).flatten(1)))

    def forward(self, x):
        features, aux = self._trunk(self._transform_input(x))
        logits = self.forward_head(features)
        if aux:
            return AuxOutputs(logits, tuple(aux), (AUX_WEIGHT,) * len(aux))
        return logits

    def classifier_names(self) -> list[str]:
        """The main classifier and the side ones, so all three fit a new class count."""
        return ["fc"] + [f"{side}.fc2" for side in ("aux1", "aux2") if getattr(self, side) is not None]


@register_model(family="googlenet", architecture=GoogLeNet,
                torchvision={"layout": "torchvision", "transform_input": True},
                paper="Szegedy et al. 2015, Going deeper with convolutions",
                small_input_size=(3, 8, 8), **IMAGENET)
def googlenet(**kwargs):
    return GoogLeNet(**kwargs)
