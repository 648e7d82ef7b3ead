"""ResNet (He, Zhang, Ren & Sun 2016, 'Deep residual learning for image recognition'; 003, 000).

A block learns a residual F(x) and outputs relu(F(x) + x): the identity path carries the signal
and its gradient straight through, so 152 layers still train ('skip connections to improve
gradient propagation', 000). BasicBlock is two 3x3 convolutions (ResNet-18/34); Bottleneck is
1x1 down, 3x3, 1x1 up by 4 (ResNet-50/101/152), with the stride on the 3x3 as torchvision has
it (the 'v1.5' that its weights use). Stages are built from (block, [blocks per stage]) exactly
as on the slide; conv1/bn1/layer1..4/fc are torchvision's names, so its weights load.
The norm is injectable by name or as a callable (norm="group", norm=partial(nn.GroupNorm, 8)).
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..layers import make_norm
from .base import IMAGENET, FeaturesHeadModel, check_stem
from .registry import register_model


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    # No bias: the norm that follows every convolution subtracts it away. Padding equal to
    # the dilation keeps a stride-1 map's size: the dilated 3x3 spans 2 * dilation + 1 pixels.
    return nn.Conv2d(in_planes, out_planes, 3, stride, padding=dilation, dilation=dilation,
                     bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, norm="batch", dilation: int = 1):
        super().__init__()
        # Both conv1 and downsample halve the resolution when stride is 2, so the sum fits.
        # torchvision refuses dilation here (its segmentation models use Bottlenecks only);
        # dilating both 3x3s is the same rule as the Bottleneck's, so ResNet-18/34 can serve
        # as DeepLab backbones too (weights are unaffected: dilation adds no parameters).
        self.conv1 = conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = make_norm(norm, planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = make_norm(norm, planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, norm="batch", dilation: int = 1):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = make_norm(norm, planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = make_norm(norm, planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def projection(inplanes: int, outplanes: int, stride: int, norm) -> nn.Module:
    """Shortcut option B: a strided 1x1 convolution where the shape changes."""
    return nn.Sequential(conv1x1(inplanes, outplanes, stride), make_norm(norm, outplanes))


def make_stage(block, inplanes: int, planes: int, blocks: int, stride: int = 1, norm="batch",
               shortcut: Callable[..., nn.Module] = projection, dilation: int = 1,
               previous_dilation: int = 1) -> nn.Sequential:
    """`blocks` residual blocks; the first changes resolution and width, the rest keep them.

    A dilated stage (`dilation` > 1, stride 1) keeps its input's resolution; its first block
    still sees the previous stage's spacing (`previous_dilation`), as in torchvision."""
    out = planes * block.expansion
    down = shortcut(inplanes, out, stride, norm) if stride != 1 or inplanes != out else None
    # Only passed where needed, so blocks without a dilation argument still build stages.
    first = {"dilation": previous_dilation} if previous_dilation != 1 else {}
    rest = {"dilation": dilation} if dilation != 1 else {}
    return nn.Sequential(block(inplanes, planes, stride, down, norm, **first),
                         *[block(out, planes, norm=norm, **rest) for _ in range(1, blocks)])


def init_weights(model: nn.Module) -> None:
    """The slide's initialisation: He (fan-out) for convolutions; norms start as identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class ResNet(FeaturesHeadModel):
    """stem="small" is for small inputs (8x8 and up; CIFAR's 32x32): conv1 becomes 3x3
    stride 1 and the max-pool goes, as in He et al.'s CIFAR networks (sec. 4.2), so for 32x32
    images layer1..4 run at 32, 16, 8 and 4 pixels.

    replace_stride_with_dilation (torchvision's option, for layer2..4): a stage marked True
    keeps its input's resolution and dilates its 3x3 convolutions instead, by the stride it
    gave up times any earlier stage's. The receptive field grows as if the stride were there,
    but the map does not shrink: segmentation models (DeepLab, torchvision's FCN) use
    (False, True, True) for an output stride of 8 instead of 32, with the same weights."""

    def __init__(self, block, layers: list[int], /, num_classes: int = 1000, in_channels: int = 3,
                 norm="batch", stem: str = "imagenet",
                 replace_stride_with_dilation=(False, False, False)):
        super().__init__()
        small = check_stem(stem)
        self.conv1 = (nn.Conv2d(in_channels, 64, 3, 1, padding=1, bias=False) if small else
                      nn.Conv2d(in_channels, 64, 7, 2, padding=3, bias=False))
        self.bn1 = make_norm(norm, 64)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, stride=2, padding=1)
        e = block.expansion
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation needs 3 flags (layer2, layer3, "
                             f"layer4), not {replace_stride_with_dilation!r}")
        self.layer1 = make_stage(block, 64, 64, layers[0], 1, norm)
        dilation = 1  # what the 3x3s of the stage being built are dilated by

        def stage(inplanes: int, planes: int, blocks: int, dilate: bool) -> nn.Sequential:
            nonlocal dilation
            previous, stride = dilation, 2
            if dilate:  # give up the stride and spread the kernels by it instead
                dilation, stride = dilation * stride, 1
            return make_stage(block, inplanes, planes, blocks, stride, norm,
                              dilation=dilation, previous_dilation=previous)

        self.layer2 = stage(64 * e, 128, layers[1], replace_stride_with_dilation[0])
        self.layer3 = stage(128 * e, 256, layers[2], replace_stride_with_dilation[1])
        self.layer4 = stage(256 * e, 512, layers[3], replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * e, num_classes)
        init_weights(self)

    def forward_features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features):
        return self.fc(self.avgpool(features).flatten(1))


_RESNET = dict(family="resnet", architecture=ResNet, torchvision={}, small_input_size=(3, 8, 8),
               **IMAGENET,
               paper="He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition")


@register_model(**_RESNET)
def resnet18(**kw):
    return ResNet(BasicBlock, [2, 2, 2, 2], **kw)


@register_model(**_RESNET)
def resnet34(**kw):
    return ResNet(BasicBlock, [3, 4, 6, 3], **kw)


@register_model(**_RESNET)
def resnet50(**kw):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kw)


@register_model(**_RESNET)
def resnet101(**kw):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kw)


@register_model(**_RESNET)
def resnet152(**kw):
    return ResNet(Bottleneck, [3, 8, 36, 3], **kw)
