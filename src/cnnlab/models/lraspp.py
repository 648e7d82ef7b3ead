"""LR-ASPP (Howard et al. 2019, 'Searching for MobileNetV3', sec. 6.4): 'lite reduced atrous
spatial pyramid pooling', a segmentation head light enough for a phone.

    backbone   MobileNetV3-Large's features, its last stages dilated (output stride 16), with
               a tap at stride 8 (the 'low' map, 40 channels) and the last map ('high', 960)
    head       high -> 1x1 convolution to 128 channels, batch norm, ReLU, multiplied by a
               per-channel gate: the whole map averaged, 1x1 convolution, sigmoid (the
               squeeze-and-excitation idea in place of ASPP's image pooling branch);
               bilinearly upsampled to the low map's size and scored by a 1x1 convolution,
               plus a 1x1 score of the low map itself (a skip, as in FCN)
    output     the scores bilinearly upsampled to the input's size

cnnlab has no MobileNetV3 of its own: the backbone is torchvision's (`mobilenet_v3_large`,
dilated=True), under the names torchvision's lraspp_mobilenet_v3_large uses
(backbone.0 ... backbone.16, classifier.cbr ...), so its COCO/VOC checkpoint loads with
--weights torchvision or --weights-file.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD
from .fcn import upsample
from .registry import register_model


class TappedFeatures(nn.Sequential):
    """The first layers of a Sequential, under their own indices, returning the map after
    layer `low` and the last one."""

    def __init__(self, layers: nn.Sequential, low: int, high: int):
        super().__init__(OrderedDict(layers[:high + 1].named_children()))  # indices as names
        self.low = str(low)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = {}
        for name, layer in self.named_children():
            x = layer(x)
            if name == self.low:
                maps["low"] = x
        maps["high"] = x
        return maps


class LRASPPHead(nn.Module):
    score_layers = ("low_classifier", "high_classifier")

    def __init__(self, low_channels: int, high_channels: int, num_classes: int,
                 inter_channels: int = 128):
        super().__init__()
        self.cbr = nn.Sequential(nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                 nn.BatchNorm2d(inter_channels), nn.ReLU())
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                   nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                   nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def forward(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        low, high = maps["low"], maps["high"]
        gated = self.cbr(high) * self.scale(high)
        gated = upsample(gated, low.shape[-2:])
        return self.low_classifier(low) + self.high_classifier(gated)


class LRASPP(nn.Module):
    def __init__(self, num_classes: int = 21, in_channels: int = 3):
        super().__init__()
        from torchvision.models import mobilenet_v3_large
        layers = mobilenet_v3_large(weights=None, dilated=True).features
        if in_channels != 3:
            stem = layers[0][0]
            layers[0][0] = nn.Conv2d(in_channels, stem.out_channels, stem.kernel_size,
                                     stem.stride, stem.padding, bias=False)
        # torchvision marks each block that halves the map with _is_cn; its output is 'low'
        # for the third such block from the end (stride 8), 'high' is the last layer's
        # (stride 16 once dilated): torchvision's choice, so its checkpoint's keys match.
        taps = ([0] + [i for i, block in enumerate(layers) if getattr(block, "_is_cn", False)]
                + [len(layers) - 1])
        low, high = taps[-4], taps[-1]
        self.backbone = TappedFeatures(layers, low, high)
        self.classifier = LRASPPHead(layers[low].out_channels, layers[high].out_channels,
                                     num_classes)
        self.torchvision_name = "lraspp_mobilenet_v3_large"
        self.cam_layer = f"backbone.{high}"  # the deepest maps, Grad-CAM's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample(self.classifier(self.backbone(x)), x.shape[-2:])

    def classifier_names(self) -> list[str]:
        return [f"classifier.{name}" for name in self.classifier.score_layers]


@register_model(family="lraspp", task="segment", input_size=(3, 520, 520), architecture=LRASPP,
                num_classes=21, mean=IMAGENET_MEAN, std=IMAGENET_STD, torchvision={},
                paper="Howard et al. 2019, Searching for MobileNetV3 (LR-ASPP)")
def lraspp(**kwargs):
    return LRASPP(**kwargs)
