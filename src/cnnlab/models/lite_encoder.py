"""EfficientNet-Lite0 as the encoder of a segmenter: its stages' feature maps, by name.

The encoder is the classifier's `features` without the final 1x1 convolution to 1280
channels (that layer only serves the ImageNet head), under the same key names, so the
shipped ImageNet weights load into it unchanged (`load_backbone_state`). Where each stage
ends, for a 224x224 input:

    stem 32 ch, stride 2    stage2 16 ch, 2    stage3 24 ch, 4    stage4 40 ch, 8
    stage5 80 ch, 16        stage6 112 ch, 16  stage7 192 ch, 32  stage8 320 ch, 32

output_stride=8 or 16 trades the later stages' stride for dilation, as DeepLabV3 does with a
ResNet's layer3 and layer4 (torchvision's MobileNetV3 has the same `dilated` option): the
first block that would halve the map keeps it and every later depthwise convolution spreads
its taps, so the receptive field and the weights stay those of the pretrained network.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .efficientnet import LITE0_STAGES, EfficientNetLite

# The stages whose outputs a decoder takes, finest first (U-Net's skips), and the last.
SKIPS = ("stage2", "stage3", "stage4", "stage6")
OUTPUT_STRIDES = (8, 16, 32)


class Lite0Encoder(nn.Module):
    # SegmentationModel's names: ASPP reads out_stage, an auxiliary head aux_stage.
    out_stage, aux_stage = "stage8", "stage6"

    def __init__(self, in_channels: int = 3, output_stride: int = 32):
        super().__init__()
        if output_stride not in OUTPUT_STRIDES:
            raise UserError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}"
                            f", not {output_stride!r}")
        features = EfficientNetLite(LITE0_STAGES, num_classes=1, in_channels=in_channels).features
        del features.conv_head
        self.features = features
        self.channels = {"stem": features.stem.conv.out_channels}
        for number, (*_, out, _blocks) in enumerate(LITE0_STAGES, start=2):
            self.channels[f"stage{number}"] = out
        self._dilate(output_stride)

    def _dilate(self, output_stride: int) -> None:
        stride, dilation = 2, 1  # the stem's stride
        for number, (*_, first_stride, _out, _blocks) in enumerate(LITE0_STAGES, start=2):
            stage = getattr(self.features, f"stage{number}")
            for index, block in enumerate(stage):
                conv = block.depthwise.conv
                if index == 0 and first_stride == 2:
                    if stride * 2 <= output_stride:
                        stride *= 2
                    else:  # keep the map's size; the blocks after this one look wider
                        conv.stride = (1, 1)
                        conv.dilation = (dilation, dilation)
                        dilation *= 2
                        continue
                conv.dilation = (dilation, dilation)

    def layer_name(self, stage: str) -> str:
        return f"backbone.features.{stage}"  # the module that outputs `stage`, from the model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = {}
        for name, layer in self.features.named_children():
            x = maps[name] = layer(x)
        return maps
