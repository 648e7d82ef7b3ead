"""U-Net (Ronneberger, Fischer & Brox 2015): a label for every pixel from an encoder that
sees more and more context and a decoder that puts the detail back.

    encoder:  [conv3x3 -> norm -> ReLU] x 2, then 2x2 max pool, `depth` times, doubling width
    bottom:   [conv3x3 -> norm -> ReLU] x 2
    decoder:  2x2 transposed convolution (learned upsampling), concatenate the encoder's map
              of the same size (the skip connection), [conv3x3 -> norm -> ReLU] x 2
    head:     1x1 convolution to one score per class and pixel

Two departures from the paper, as most implementations make them: padded ('same')
convolutions, so the output has the input's size and no tiling with overlap is needed (any
size: the input is padded to a multiple of 2^depth and the scores cropped back), and
batch normalisation after each convolution (it postdates the paper), which lets a small
U-Net train in minutes with Adam.

backbone="efficientnet_lite0" swaps the encoder for a pretrained classifier's stages (as
the many 'U-Net with an ImageNet encoder' variants do): the decoder takes Lite0's maps at
strides 16, 8, 4 and 2 as its skips, and a last 2x upsampling gives the input's size. The
encoder is the module `backbone`, which --pretrained efficientnet_lite0 fills with ImageNet
weights; any input size works (odd sizes are cropped back after each upsampling).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, unknown_name
from ..layers.blocks import ConvNormAct
from .fcn import crop_to
from .registry import register_model

BACKBONES = ("efficientnet_lite0",)


def _double(in_channels: int, out_channels: int, norm: str) -> nn.Sequential:
    return nn.Sequential(ConvNormAct(in_channels, out_channels, 3, norm=norm),
                         ConvNormAct(out_channels, out_channels, 3, norm=norm))


class UNet(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3, depth: int = 3,
                 width: int = 16, norm: str = "batch"):
        super().__init__()
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        for level in range(depth):
            self.down.append(_double(in_channels if level == 0 else widths[level - 1],
                                     widths[level], norm))
        self.pool = nn.MaxPool2d(2)
        self.bottom = _double(widths[depth - 1], widths[depth], norm)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
                                for level in reversed(range(depth)))
        self.merge = nn.ModuleList(_double(2 * widths[level], widths[level], norm)
                                   for level in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.depth = depth
        self.cam_layer = "bottom"  # the deepest maps, Grad-CAM's default (look/gradcam.py)

    def classifier_names(self) -> list[str]:
        """The layer that outputs class scores (fresh when loading weights for other
        classes)."""
        return ["head"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each pooling halves the map: pad to a multiple of 2^depth (zeros on the bottom and
        # right), so any size works, and crop the scores back to the input's.
        side, (height, width) = 2 ** self.depth, x.shape[-2:]
        x = F.pad(x, (0, -width % side, 0, -height % side))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)[..., :height, :width]


class EncoderUNet(nn.Module):
    """U-Net's decoder on a pretrained encoder's stages (see the module's docstring)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3,
                 backbone: str = "efficientnet_lite0", norm: str = "batch"):
        super().__init__()
        if backbone not in BACKBONES:
            raise unknown_name("backbone", backbone, BACKBONES)
        from .lite_encoder import SKIPS, Lite0Encoder
        self.backbone = Lite0Encoder(in_channels)
        self.cam_layer = self.backbone.layer_name(self.backbone.out_stage)  # the deepest maps
        self.skips = SKIPS[::-1]  # deepest first, as the decoder meets them
        below = self.backbone.channels[self.backbone.out_stage]
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        for skip in self.skips:
            width = self.backbone.channels[skip]
            self.up.append(nn.ConvTranspose2d(below, width, 2, stride=2))
            self.merge.append(_double(2 * width, width, norm))
            below = width
        # The stem's stride 2 has no skip to meet: one more upsampling to the input's size.
        self.final_up = nn.ConvTranspose2d(below, below, 2, stride=2)
        self.head = nn.Conv2d(below, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.backbone(x)
        y = maps[self.backbone.out_stage]
        for up, merge, skip in zip(self.up, self.merge, self.skips):
            y = merge(torch.cat([crop_to(up(y), maps[skip]), maps[skip]], dim=1))
        return self.head(crop_to(self.final_up(y), x))

    def classifier_names(self) -> list[str]:
        return ["head"]


# The design size: the paper's 572x572 input tile, as the multiple of 2^depth below it (its
# unpadded convolutions needed the extra border). Smaller images train at their own size.
@register_model(family="unet", task="segment", input_size=(3, 512, 512), architecture=UNet,
                num_classes=2, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                paper="Ronneberger, Fischer & Brox 2015, U-Net: Convolutional networks for "
                      "biomedical image segmentation")
def unet(backbone: str | None = None, **kwargs):
    """The paper's U-Net, or with backbone=NAME its decoder on a pretrained encoder."""
    if backbone is None:
        return UNet(**kwargs)
    extra = sorted(set(kwargs) - {"num_classes", "in_channels", "norm"})
    if extra:
        raise UserError(f"{', '.join(extra)} shape(s) the paper's encoder; with "
                        f"backbone={backbone} the encoder is the pretrained network's.")
    return EncoderUNet(backbone=backbone, **kwargs)
