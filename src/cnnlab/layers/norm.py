"""Normalisation inside the network (003, 004): keep every layer's input on one scale.

All of batch, layer, instance and group normalisation compute x_hat = (x - mean) / sqrt(var + eps)
and then y = gamma * x_hat + beta per channel; they differ only in *which* values share a mean
and variance:

    batch     one channel across the whole mini-batch   (N, H, W)   Ioffe & Szegedy 2015
    layer     one image across all its channels         (C, H, W)   Ba et al. 2016
    instance  one channel of one image                  (H, W)      Ulyanov et al. 2016
    group     one image across a group of channels      (C/G, H, W) Wu & He 2018
    switchable  a learned blend of instance, layer and batch statistics (Luo et al. 2018)

Weight normalisation rescales a layer's weights instead of its outputs, and local response
normalisation (AlexNet) divides by the energy of neighbouring channels.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import unknown_name


class LayerNorm2d(nn.GroupNorm):
    """Layer normalisation for feature maps (003): mean and variance of each image over
    C x H x W, then a per-channel scale and shift. Exactly GroupNorm with one group; the
    subclass keeps the name visible in summaries."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__(1, num_channels, eps=eps, affine=affine)


def group_count(channels: int, target: int = 32) -> int:
    """Wu & He's 32 groups where the channels allow; otherwise the largest divisor below 32."""
    return max(g for g in range(1, min(target, channels) + 1) if channels % g == 0)


class SwitchableNorm2d(nn.Module):
    """Switchable normalisation (Luo et al. 2018, 'Differentiable Learning-to-Normalize via
    Switchable Normalization'; 003): the mean and the variance are each a softmax-weighted sum
    of the instance, layer and batch statistics, with the two sets of three weights learned.

    Layer and batch statistics are computed from the instance ones (law of total variance), so
    one pass over the pixels serves all three. In training the batch part uses the mini-batch
    and updates running averages, exactly like BatchNorm2d; in evaluation it uses them.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        # Order: instance, layer, batch. Equal logits: the paper starts from a uniform blend.
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _batch_stats(self, mean_in, var_in, count: int):
        if not self.training:
            shape = (1, -1, 1, 1)
            return self.running_mean.view(shape), self.running_var.view(shape)
        mean_bn = mean_in.mean(0, keepdim=True)
        var_bn = var_in.mean(0, keepdim=True) + mean_in.var(0, unbiased=False, keepdim=True)
        with torch.no_grad():  # running variance is unbiased, as BatchNorm2d keeps it
            unbiased = var_bn * count / max(count - 1, 1)
            self.running_mean.lerp_(mean_bn.flatten(), self.momentum)
            self.running_var.lerp_(unbiased.flatten(), self.momentum)
        return mean_bn, var_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        var_in, mean_in = torch.var_mean(x, dim=(2, 3), unbiased=False, keepdim=True)
        mean_ln = mean_in.mean(1, keepdim=True)
        var_ln = var_in.mean(1, keepdim=True) + mean_in.var(1, unbiased=False, keepdim=True)
        mean_bn, var_bn = self._batch_stats(mean_in, var_in, n * h * w)
        wm, wv = F.softmax(self.mean_weight, 0), F.softmax(self.var_weight, 0)
        mean = wm[0] * mean_in + wm[1] * mean_ln + wm[2] * mean_bn
        var = wv[0] * var_in + wv[1] * var_ln + wv[2] * var_bn
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        return x_hat * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)


class LocalResponseNorm(nn.LocalResponseNorm):
    """AlexNet's local response normalisation (Krizhevsky et al. 2012, sec. 3.3):
    b_i = a_i / (k + alpha * sum_{j near i} a_j^2)^beta over `size` neighbouring channels,
    with the paper's k=2, n=5, alpha=1e-4, beta=0.75. torch divides alpha by n; this class
    takes alpha as the paper writes it, so the paper's numbers can be used unchanged."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__(size, alpha=alpha * size, beta=beta, k=k)


def weight_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Weight normalisation (Salimans & Kingma 2016; 003): w = g * v / ||v||, one g per output
    channel, so a weight's length and direction are learned separately. Wraps `module` in place
    (torch's parametrization) and returns it; its output is unchanged at the moment of wrapping."""
    return nn.utils.parametrizations.weight_norm(module, name=name, dim=0)


def _group_norm(channels: int, eps: float = 1e-5) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels), channels, eps=eps)


def _instance_norm(channels: int, eps: float = 1e-5) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, eps=eps, affine=True)


def _no_norm(channels: int, eps: float = 1e-5) -> nn.Identity:
    return nn.Identity()


NORMS: dict[str, Callable[..., nn.Module]] = {
    "batch": nn.BatchNorm2d, "group": _group_norm, "layer": LayerNorm2d,
    "instance": _instance_norm, "switchable": SwitchableNorm2d, "none": _no_norm,
}


def norm_layer(name: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The factory for a norm by name: norm_layer("group")(64) -> GroupNorm(32, 64).
    A callable is returned as it is, so a model's norm can also be injected directly
    (torchvision's norm_layer), e.g. functools.partial(nn.GroupNorm, 8)."""
    if callable(name):
        return name
    if name not in NORMS:
        raise unknown_name("norm", name, NORMS)
    return NORMS[name]


def make_norm(name: str | Callable[..., nn.Module], channels: int, eps: float = 1e-5) -> nn.Module:
    return norm_layer(name)(channels, eps=eps)
