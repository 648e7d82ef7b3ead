"""Super-resolution networks: a low-resolution image in, the same image `scale` times larger out.

    SRCNN  (Dong, Loy, He & Tang 2014): upscale with bicubic first, then three convolutions,
           9x9 -> 64 maps, 1x1 -> 32, 5x5 -> the image ("patch extraction, non-linear mapping,
           reconstruction"); every layer works at the high resolution.
    FSRCNN (Dong, Loy & Tang 2016): the same three stages in the low resolution, thinner
           (5x5 -> 56, shrink 1x1 -> 12, four 3x3 maps, expand 1x1 -> 56, PReLU) and a 9x9
           transposed convolution that upscales last.
    ESPCN  (Shi et al. 2016): convolutions in the low resolution (5x5 -> 64, 3x3 -> 32),
           the last one giving scale^2 maps per channel, which the sub-pixel convolution
           (nn.PixelShuffle) interleaves into one map `scale` times larger: each of the
           scale^2 maps fills one position of every scale x scale block. The paper's tanh is
           activation="tanh"; ReLU is the default here, as it learned faster on the bundled
           photos (x2, 12 epochs: +1.29 dB over bicubic with ReLU, +0.95 dB with tanh,
           measured in a stand-alone script of this network).

They work on one channel, the luminance Y (as the papers do: the eye sees detail in Y, and
predict upscales the colour with bicubic), take Y on the 0-1 scale and return it on the same
scale. One departure from the papers, on by default: `residual=True` adds the bicubic
upscaling of the input to the output, so the network learns only what bicubic misses
(global residual learning, Kim, Lee & Lee 2016, VDSR). It starts as good as bicubic and gets
past it within minutes on a CPU; residual=False gives the papers' networks exactly. Padded
('same') convolutions keep the output at exactly `scale` times the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..layers.blocks import make_activation
from .registry import register_model

SCALES = (2, 3, 4)
# Y of 8-bit photographs, as the papers train and test; statistics of the scale of the input
# (the task feeds Y / 255 unnormalised, so that bicubic and the output share the 0-1 scale).
SR = dict(input_size=(1, 256, 256), mean=(0.0,), std=(1.0,), task="superres")


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling by `scale` (PyTorch's, a = -0.75), the baseline every SR paper beats."""
    return F.interpolate(x, size=(x.shape[-2] * scale, x.shape[-1] * scale), mode="bicubic",
                         align_corners=False)


def _check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise UserError(f"scale must be one of {', '.join(map(str, SCALES))}, not {scale!r}.")


class SuperResolution(nn.Module):
    """What every upscaler here shares: `scale`, the optional bicubic skip, and the
    reconstruction layer as its 'head' (the layer reset_classifier would swap: there are no
    classes, so it stays)."""
    scale: int
    residual: bool
    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_head(self.forward_features(self.prepare(x)))
        return out + bicubic(x, self.scale) if self.residual else out

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def start_as_bicubic(self) -> None:
        """With the bicubic skip, a zero last layer makes the untrained network bicubic
        upscaling exactly: training starts from the baseline, not from noise added to it."""
        if self.residual:
            last = [m for m in self.head.modules()
                    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def classifier_names(self) -> list[str]:
        return []  # nothing depends on a number of classes

    def reset_classifier(self, num_classes: int) -> None:
        """No classes to reset: an upscaler's output is the image."""


class SRCNN(SuperResolution):
    def __init__(self, num_classes: int = 1, in_channels: int = 1, scale: int = 2,
                 widths: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 1, 5),
                 residual: bool = True):
        super().__init__()
        _check_scale(scale)
        self.scale, self.residual = scale, residual
        (w1, w2), (k1, k2, k3) = widths, kernels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, k1, padding=k1 // 2), nn.ReLU(inplace=True),   # extraction
            nn.Conv2d(w1, w2, k2, padding=k2 // 2), nn.ReLU(inplace=True))            # mapping
        self.head = nn.Conv2d(w2, in_channels, k3, padding=k3 // 2)                   # reconstruction
        self.cam_layer = "features"
        self.start_as_bicubic()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return bicubic(x, self.scale)  # SRCNN's input is the bicubic-upscaled image


class FSRCNN(SuperResolution):
    def __init__(self, num_classes: int = 1, in_channels: int = 1, scale: int = 2,
                 d: int = 56, s: int = 12, m: int = 4, residual: bool = True):
        super().__init__()
        _check_scale(scale)
        self.scale, self.residual = scale, residual
        layers = [nn.Conv2d(in_channels, d, 5, padding=2), nn.PReLU(d),        # extraction
                  nn.Conv2d(d, s, 1), nn.PReLU(s)]                              # shrinking
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]              # mapping
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]                             # expanding
        self.features = nn.Sequential(*layers)
        # 9x9 deconvolution: output (H - 1) scale - 8 + 9 + (scale - 1) = H scale exactly
        self.head = nn.ConvTranspose2d(d, in_channels, 9, stride=scale, padding=4,
                                       output_padding=scale - 1)
        self.cam_layer = "features"
        self.start_as_bicubic()


class ESPCN(SuperResolution):
    def __init__(self, num_classes: int = 1, in_channels: int = 1, scale: int = 2,
                 widths: tuple[int, int] = (64, 32), activation: str = "relu",
                 residual: bool = True):
        super().__init__()
        _check_scale(scale)
        self.scale, self.residual = scale, residual
        w1, w2 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, 5, padding=2), make_activation(activation),
            nn.Conv2d(w1, w2, 3, padding=1), make_activation(activation))
        # the sub-pixel convolution: scale^2 low-resolution maps per channel, interleaved
        self.head = nn.Sequential(nn.Conv2d(w2, in_channels * scale * scale, 3, padding=1),
                                  nn.PixelShuffle(scale))
        self.cam_layer = "features"
        self.start_as_bicubic()


@register_model(family="superres", paper="Dong et al. 2014, Image Super-Resolution Using Deep "
                "Convolutional Networks (SRCNN)", architecture=SRCNN, **SR)
def srcnn(**kwargs) -> SRCNN:
    return SRCNN(**kwargs)


@register_model(family="superres", paper="Dong, Loy & Tang 2016, Accelerating the Super-"
                "Resolution Convolutional Neural Network (FSRCNN)", architecture=FSRCNN, **SR)
def fsrcnn(**kwargs) -> FSRCNN:
    return FSRCNN(**kwargs)


@register_model(family="superres", paper="Shi et al. 2016, Real-Time Single Image and Video "
                "Super-Resolution Using an Efficient Sub-Pixel CNN (ESPCN)", architecture=ESPCN,
                **SR)
def espcn(**kwargs) -> ESPCN:
    return ESPCN(**kwargs)
