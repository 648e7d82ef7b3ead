"""Every kind of convolution the lectures name, as layers you can drop into a model.

The one formula behind them all (003): O = (N + 2P - F) / S + 1, with F = d(k - 1) + 1 for a
dilated kernel. The simple kinds are nn.Conv2d with particular settings, so they are plain
functions returning nn.Conv2d (state dicts stay torch's own); the compound kinds are classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, unknown_name


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding per side, d(k-1)//2, that keeps the size at stride 1 when d(k-1) is even (odd
    kernels; even ones only at even dilation).

    004's 'to keep resolution the same, use padding = kernel_size // 2' holds for odd k. An
    even kernel at dilation 1 needs k-1 padding in all, an odd number, which one number per
    side cannot split: this gives (k-1)//2 and the output is one row and column smaller (2x2:
    0 padding, N-1); 004's k // 2 gives one larger (N+1). nn.Conv2d(padding='same') pads the
    odd one on the right and bottom instead."""
    return dilation * (kernel_size - 1) // 2


def standard_conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                  padding: int | None = None, bias: bool = True) -> nn.Conv2d:
    """The local linear regression of 004: one k x k x C_in kernel per output channel, slid
    over the image; F*F*C_in*K + K parameters (003). Padding defaults to same_padding, which
    keeps the size for odd kernels at stride 1 (an even kernel loses a row and a column)."""
    padding = same_padding(kernel_size) if padding is None else padding
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)


def strided_conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 bias: bool = True) -> nn.Conv2d:
    """Stride > 1 skips positions: learned downsampling that compresses space (000, 'Effect
    of stride'), the way ResNet halves resolution without pooling."""
    return standard_conv(in_channels, out_channels, kernel_size, stride, bias=bias)


class PaddedConv2d(nn.Conv2d):
    """A convolution with explicit border handling (000: zero, constant, reflection,
    replication padding; plus circular). nn.Conv2d has no 'constant' mode with a chosen value,
    so this pads with F.pad and convolves unpadded; its state dict is nn.Conv2d's."""

    MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect",
             "replicate": "replicate", "circular": "circular"}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int | None = None, padding_mode: str = "zeros", value: float = 0.0,
                 stride: int = 1, dilation: int = 1, bias: bool = True):
        if padding_mode not in self.MODES:
            raise unknown_name("padding mode", padding_mode, self.MODES)
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, bias=bias)
        self.pad = same_padding(kernel_size, dilation) if padding is None else padding
        self.fill_mode = self.MODES[padding_mode]
        self.value = value if padding_mode == "constant" else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            value = self.value if self.fill_mode == "constant" else None
            x = F.pad(x, (self.pad,) * 4, mode=self.fill_mode, value=value)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}, fill={self.fill_mode}:{self.value:g}"


def dilated_conv(in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 2,
                 bias: bool = True) -> nn.Conv2d:
    """Gaps of `dilation - 1` between kernel taps (003): a 3x3 kernel at dilation 2 sees a 5x5
    field with 9 weights. Padded so the output keeps the input's size when d(k-1) is even
    (see same_padding: an even kernel at odd dilation spans an even field, which no symmetric
    padding keeps)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=same_padding(kernel_size, dilation),
                     dilation=dilation, bias=bias)


def grouped_conv(in_channels: int, out_channels: int, groups: int, kernel_size: int = 3,
                 stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """Channels split into `groups` that never mix (004 'groups'; AlexNet's two GPUs):
    parameters and work divide by `groups`."""
    if in_channels % groups or out_channels % groups:
        raise UserError(f"groups={groups} must divide both in_channels ({in_channels}) "
                        f"and out_channels ({out_channels}).")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, same_padding(kernel_size),
                     groups=groups, bias=bias)


def depthwise_conv(channels: int, kernel_size: int = 3, stride: int = 1, multiplier: int = 1,
                   bias: bool = True) -> nn.Conv2d:
    """001: 'one filter per channel; the output is stacked' -- groups equal to the channels."""
    return grouped_conv(channels, channels * multiplier, channels, kernel_size, stride, bias)


def pointwise_conv(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """001: a 1x1 convolution 'adds up channels': a per-pixel linear map across channels
    (GoogLeNet's dimension reduction, 003)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)


def transposed_conv(in_channels: int, out_channels: int, kernel_size: int = 2, stride: int = 2,
                    padding: int = 0, output_padding: int = 0, bias: bool = True) -> nn.ConvTranspose2d:
    """003: a 'fractionally strided' convolution that upsamples, O = (N - 1)S - 2P + F + OP;
    not the inverse of a convolution, only its transpose."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding,
                              output_padding, bias=bias)


class SpatiallySeparableConv2d(nn.Sequential):
    """003 'Separable convolutions': k = k1 . k2, so a k x k convolution becomes a k x 1 pass
    then a 1 x k pass (Sobel = [1 2 1]^T [-1 0 1]): 2k weights per pair instead of k^2.
    `full_kernel()` gives the k x k kernel the two passes equal."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 mid_channels: int | None = None, stride: int = 1, bias: bool = True):
        mid = out_channels if mid_channels is None else mid_channels
        pad = same_padding(kernel_size)
        # The first pass has no bias: a bias between the two passes would leak through the
        # zero-padded border and break the equality with one k x k convolution.
        super().__init__(
            nn.Conv2d(in_channels, mid, (kernel_size, 1), (stride, 1), (pad, 0), bias=False),
            nn.Conv2d(mid, out_channels, (1, kernel_size), (1, stride), (0, pad), bias=bias))

    def full_kernel(self) -> torch.Tensor:
        """W[o, i] = sum_m row[o, m] outer column[m, i]: out x in x k x k."""
        column, row = self[0].weight[..., 0], self[1].weight[:, :, 0, :]  # m,i,k and o,m,k
        return torch.einsum("mik,omj->oikj", column, row)


class DepthwiseSeparableConv2d(nn.Sequential):
    """Depthwise then pointwise (001; MobileNet): C_in*k*k + C_in*C_out weights instead of
    C_in*C_out*k*k -- roughly 1/C_out + 1/k^2 of a standard convolution's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, bias: bool = True):
        super().__init__(depthwise_conv(in_channels, kernel_size, stride, bias=bias),
                         pointwise_conv(in_channels, out_channels, bias=bias))

    @staticmethod
    def parameter_formula(in_channels: int, out_channels: int, kernel_size: int,
                          bias: bool = True) -> int:
        return (in_channels * kernel_size ** 2 + in_channels * out_channels
                + (in_channels + out_channels) * bias)


class DeformableConv2d(nn.Module):
    """004 'deformable convolutions' (Dai et al. 2017): a small convolution predicts, at every
    position, a 2-D offset for each kernel tap, and the kernel samples there (bilinearly).
    The offset predictor starts at zero, so training starts from a standard convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, dilation: int = 1,
                 offset_groups: int = 1, bias: bool = True):
        from torchvision.ops import DeformConv2d  # imported on use: layers stay torch-only

        super().__init__()
        padding = same_padding(kernel_size, dilation) if padding is None else padding
        self.offset = nn.Conv2d(in_channels, 2 * offset_groups * kernel_size ** 2, kernel_size,
                                stride, padding, dilation)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.conv = DeformConv2d(in_channels, out_channels, kernel_size, stride, padding,
                                 dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.offset(x))


CONVOLUTIONS = {
    "standard": standard_conv, "strided": strided_conv, "padded": PaddedConv2d,
    "dilated": dilated_conv, "grouped": grouped_conv, "depthwise": depthwise_conv,
    "pointwise": pointwise_conv, "transposed": transposed_conv,
    "separable": SpatiallySeparableConv2d, "depthwise_separable": DepthwiseSeparableConv2d,
    "deformable": DeformableConv2d,
}


def make_conv(kind: str, *args, **kwargs) -> nn.Module:
    """A convolution by kind name, e.g. make_conv("dilated", 16, 32, dilation=2)."""
    if kind not in CONVOLUTIONS:
        raise unknown_name("convolution kind", kind, CONVOLUTIONS)
    return CONVOLUTIONS[kind](*args, **kwargs)
