"""U-Net (Ronneberger, Fischer & Brox 2015): a label for every pixel from an encoder that
sees more and more context and a decoder that puts the detail back.

    encoder:  [conv3x3 -> norm -> ReLU] x 2, then 2x2 max pool, `depth` times, doubling width
    bottom:   [conv3x3 -> norm -> ReLU] x 2
    decoder:  2x2 transposed convolution (learned upsampling), concatenate the encoder's map
              of the same size (the skip connection), [conv3x3 -> norm -> ReLU] x 2
    head:     1x1 convolution to one score per class and pixel

Two departures from the paper, as most implementations make them: padded ('same')
convolutions, so the output has the input's size and no tiling with overlap is needed, and
batch normalisation after each convolution (it postdates the paper), which lets a small
U-Net train in minutes with Adam.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.blocks import ConvNormAct
from .registry import register_model


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = 2 ** self.depth
        if x.shape[-2] % side or x.shape[-1] % side:
            raise ValueError(f"U-Net of depth {self.depth} needs a height and width divisible "
                             f"by {side}, not {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


@register_model(family="unet", task="segment", input_size=(3, 32, 32), architecture=UNet,
                num_classes=2, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                paper="Ronneberger, Fischer & Brox 2015, U-Net: Convolutional networks for "
                      "biomedical image segmentation")
def unet(**kwargs):
    return UNet(**kwargs)
