"""How close a restored image is to the original: PSNR and SSIM on the luminance channel,
as the super-resolution papers measure them (SRCNN, Dong et al. 2014; ESPCN, Shi et al. 2016).

    Y     = 16 + (65.481 R + 128.553 G + 24.966 B), with R, G, B in [0, 1]   (ITU-R BT.601, the
            studio range 16..235 that MATLAB's rgb2ycbcr and skimage.color.rgb2ycbcr give)
    PSNR  = 10 log10(peak^2 / mean squared error)                    (peak: 255 for 8-bit Y)
    SSIM  = mean over windows of (2 mu_x mu_y + C1)(2 cov_xy + C2) /
                                 ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))
            with a Gaussian window (11 x 11, sigma 1.5), C1 = (0.01 peak)^2, C2 = (0.03 peak)^2
            (Wang et al. 2004), averaged over the windows that lie inside the image.

Both equal scikit-image's peak_signal_noise_ratio and structural_similarity(gaussian_weights=
True, sigma=1.5, use_sample_covariance=False, data_range=255) (tests/test_superres.py), but
run in torch on whole batches on the training device. The papers crop a border of `scale`
pixels before measuring (an upscaler cannot know what lies beyond the edge): `crop_border`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# BT.601 in the studio range, as a matrix on R, G, B scaled to [0, 1]
_TO_YCBCR = torch.tensor([[65.481, 128.553, 24.966],
                          [-37.797, -74.203, 112.0],
                          [112.0, -93.786, -18.214]], dtype=torch.float64)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """... x 3 x H x W RGB on the 0-255 scale -> Y, Cb, Cr as floats on the 0-255 scale."""
    matrix = _TO_YCBCR.to(rgb.device, torch.float32) / 255
    out = torch.einsum("ij,...jhw->...ihw", matrix, rgb.float())
    return out + _OFFSET.to(rgb.device, torch.float32).view(3, 1, 1)


def rgb(ycc: torch.Tensor) -> torch.Tensor:
    """The inverse of `ycbcr`: floats on the 0-255 scale (not rounded or clipped)."""
    inverse = torch.linalg.inv(_TO_YCBCR).to(ycc.device, torch.float32) * 255
    shifted = ycc.float() - _OFFSET.to(ycc.device, torch.float32).view(3, 1, 1)
    return torch.einsum("ij,...jhw->...ihw", inverse, shifted)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """uint8 ... x C x H x W (grey, RGB or RGBA) -> uint8 ... x 1 x H x W luminance Y, rounded
    as an 8-bit YCbCr image stores it; grey images count as R = G = B."""
    if images.shape[-3] == 4:
        images = images[..., :3, :, :]
    if images.shape[-3] == 1:
        images = images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    return ycbcr(images)[..., :1, :, :].round().clamp(0, 255).to(torch.uint8)


def crop_border(images: torch.Tensor, border: int) -> torch.Tensor:
    return images[..., border:images.shape[-2] - border, border:images.shape[-1] - border]


def quantised(images: torch.Tensor) -> torch.Tensor:
    """Model output on the 0-1 scale -> the 0-255 levels an 8-bit image of it would hold."""
    return (images.float() * 255).round().clamp(0, 255)


def _wide(x: torch.Tensor) -> torch.Tensor:
    """float64 where the device has it (Apple's MPS has not: float32 there)."""
    return x.to(torch.float32 if x.device.type == "mps" else torch.float64)


def squared_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image (N x C x H x W): the sum of squared differences."""
    return (_wide(a) - _wide(b)).square().flatten(1).sum(dim=1)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """One image's (or a batch taken as one image's) PSNR in dB; inf when they are equal."""
    mse = float((_wide(a) - _wide(b)).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def psnr_of(squared_error: float, pixels: int, data_range: float = 255.0) -> float:
    """PSNR from a sum of squared errors over `pixels` values (a whole split as one image)."""
    mse = squared_error / max(pixels, 1)
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def _gaussian_window(like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(WINDOW, dtype=like.dtype, device=like.device) - WINDOW // 2
    line = torch.exp(-x * x / (2 * SIGMA ** 2))
    line = line / line.sum()
    return (line[:, None] * line[None, :])[None, None]


def ssims(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """SSIM of each image pair (N x C x H x W, channels averaged). Only windows
    wholly inside the image count: scikit-image filters with reflected edges and then crops
    those (11 - 1) / 2 pixels away, which leaves exactly the 'valid' convolution here."""
    a, b = _wide(a), _wide(b)
    n, c = a.shape[:2]
    a, b = a.reshape(n * c, 1, *a.shape[2:]), b.reshape(n * c, 1, *b.shape[2:])
    window = _gaussian_window(a)
    blur = lambda x: F.conv2d(x, window)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
             / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)))
    return index.flatten(1).mean(dim=1).view(n, c).mean(dim=1)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """SSIM of one image pair (C x H x W or H x W)."""
    while a.dim() < 4:
        a, b = a[None], b[None]
    return float(ssims(a, b, data_range)[0])
