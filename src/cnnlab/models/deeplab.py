"""DeepLabV3 (Chen, Papandreou, Schroff & Adam 2017, 'Rethinking atrous convolution for
semantic image segmentation'): keep the feature maps large, and see context at several
scales at once.

    backbone  a ResNet whose layer3 and layer4 trade their stride for dilation ('atrous'
              convolution): output stride 8 instead of 32, the same receptive field, the
              same weights (resnet.py's replace_stride_with_dilation)
    ASPP      atrous spatial pyramid pooling, five branches side by side on layer4:
                a 1x1 convolution,
                three 3x3 convolutions dilated by 12, 24 and 36 (the paper's 6, 12, 18 for
                output stride 16, doubled for stride 8),
                image pooling: the whole map averaged to one vector, a 1x1 convolution,
                copied back to every position (global context; a 3x3 dilated nearly as
                wide as the map sees only padding beyond its centre, sec. 3.3)
              each with batch norm and ReLU, concatenated, 1x1 to 256 channels, dropout 0.5
    head      3x3 convolution, batch norm, ReLU, 1x1 to a score per class, then bilinear
              upsampling to the input's size

Module names are torchvision's (backbone.layer4..., classifier.0.convs.1.0.weight ...), so
its deeplabv3_resnet50/101 checkpoints load with --weights-file (aux=True keeps their
auxiliary FCNHead on layer3; with aux=False its weights are skipped). Small images
(stem="small") reach output stride 8 without dilation; the rates then span more than a
32x32 image's 4x4 map, so pass smaller ones (rates=(1, 2, 3)) for them.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .base import IMAGENET_MEAN, IMAGENET_STD
from .fcn import SegmentationModel, make_backbone
from .registry import register_model


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 1,
                  dilation: int = 1) -> list[nn.Module]:
    # Padding = dilation keeps the size for the 3x3s; no bias before batch norm.
    return [nn.Conv2d(in_channels, out_channels, kernel, padding=dilation * (kernel // 2),
                      dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class ImagePooling(nn.Sequential):
    """ASPP's image-level branch: global average, 1x1 convolution, batch norm, ReLU, copied
    back to every position of the map."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision interpolates the 1x1 map bilinearly: the same as copying it.
        return super().forward(x).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: `convs` are the five branches (torchvision's order and
    names), `project` fuses them."""

    def __init__(self, in_channels: int, rates=(12, 24, 36), out_channels: int = 256):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(in_channels, out_channels))]
            + [nn.Sequential(*_conv_bn_relu(in_channels, out_channels, 3, rate))
               for rate in rates]
            + [ImagePooling(in_channels, out_channels)])
        self.project = nn.Sequential(*_conv_bn_relu(len(self.convs) * out_channels,
                                                    out_channels), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    """ASPP, 3x3 convolution, batch norm, ReLU, 1x1 scores (torchvision's indices 0..4)."""
    score_layers = ("4",)

    def __init__(self, in_channels: int, num_classes: int, rates=(12, 24, 36)):
        super().__init__(ASPP(in_channels, rates), *_conv_bn_relu(256, 256, 3),
                         nn.Conv2d(256, num_classes, 1))


class DeepLabV3(SegmentationModel):
    def __init__(self, num_classes: int = 21, in_channels: int = 3, backbone: str = "resnet50",
                 aux: bool = False, stem: str = "imagenet", rates=(12, 24, 36)):
        if isinstance(rates, (str, bytes)) or not all(
                isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in rates):
            raise UserError(f"rates must be a list of positive whole numbers, e.g. "
                            f"rates=[12,24,36], not {rates!r}")
        # The ImageNet stem is at stride 32 after layer4: dilating layer3/4 gives 8. The
        # small stem is at stride 8 already.
        features = make_backbone(backbone, in_channels, stem, dilate=stem == "imagenet")
        classifier = DeepLabHead(features.channels[features.out_stage], num_classes,
                                 tuple(rates))
        super().__init__(features, classifier, num_classes, aux)
        self.torchvision_name = f"deeplabv3_{backbone}"  # its weights' name, where it has some


@register_model(family="deeplab", task="segment", input_size=(3, 520, 520),
                small_input_size=(3, 8, 8), architecture=DeepLabV3, num_classes=21, torchvision={},
                mean=IMAGENET_MEAN, std=IMAGENET_STD,
                paper="Chen, Papandreou, Schroff & Adam 2017, Rethinking atrous convolution "
                      "for semantic image segmentation")
def deeplabv3(**kwargs):
    return DeepLabV3(**kwargs)
