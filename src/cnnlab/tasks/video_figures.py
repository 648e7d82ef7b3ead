"""Looking inside a video model (`cnnlab report` on a --task video run): 3-D kernels and
feature maps drawn over time.

A 3-D convolution's kernel is out x in x kT x kH x kW: besides the kH x kW pattern of a 2-D
kernel it spans kT frames, which is how it sees motion (C3D, 2015). So each first-layer kernel
is drawn as a strip of its kT time slices, left to right: a kernel whose slices differ
(a blob that shifts, or flips sign from one frame to the next) responds to change over time;
one whose slices are alike looks at a single frame's appearance. A feature map of a clip is
drawn the same way, channels as rows and time steps as columns.

Zero weight is mid-grey, as in look/filters.py; each kernel is scaled by its own largest
|weight|, each feature-map row by its own range.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..figures import mosaic, symmetric_range, unit_range
from ..webpage import figure, image_png, section

MAX_KERNELS = 16   # rows of the kernel picture
MAX_CHANNELS = 8   # rows of each feature-map picture: the most active channels
MAX_LAYERS = 4     # feature-map pictures: first, last and evenly between
SCALE = 4          # pixels per activation in the pictures
KERNEL_PIXELS = 24  # a kernel slice's side in the picture, at least SCALE pixels per weight


def convolutions_3d(model: nn.Module) -> list[tuple[str, nn.Conv3d]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv3d)]


def _as_png(grid: np.ndarray, scale: int = SCALE) -> bytes:
    """A [0, 1] grid (H x W or H x W x 3) -> PNG, blown up `scale` times with hard edges."""
    pixels = np.rint(np.nan_to_num(grid, nan=1.0) * 255).astype(np.uint8)
    pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    return image_png(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))


def kernel_strips(weight: torch.Tensor) -> np.ndarray:
    """out x in x kT x kH x kW -> one row per output kernel, its kT slices left to right: RGB
    tiles for a 3-channel input, grey (the mean over input channels) otherwise."""
    kernels = weight[:MAX_KERNELS].detach().float().cpu().numpy()
    tiles = []
    for kernel in kernels:  # in x kT x kH x kW, scaled as one so slices compare
        scaled = symmetric_range(kernel)
        slices = (np.moveaxis(scaled, 0, -1) if scaled.shape[0] == 3  # kT x kH x kW x 3
                  else scaled.mean(axis=0))
        tiles.extend(slices)
    return mosaic(tiles, columns=kernels.shape[2], fill=1.0)


def feature_strips(activation: torch.Tensor) -> tuple[np.ndarray, int]:
    """C x T x H x W of one clip -> the MAX_CHANNELS most active channels as rows of their
    T time steps, and the number of channels there were."""
    strength = activation.abs().mean(dim=(1, 2, 3))
    chosen = strength.argsort(descending=True)[:MAX_CHANNELS].sort().values
    tiles = []
    for row in activation[chosen].float().cpu().numpy():
        tiles.extend(unit_range(row))  # one range a channel: its frames compare
    return mosaic(tiles, columns=activation.shape[1], fill=1.0), activation.shape[0]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _picked(layers: list, count: int) -> list:
    if len(layers) <= count:
        return layers
    return [layers[i] for i in np.linspace(0, len(layers) - 1, count).round().astype(int)]


def record_activations(model: nn.Module, clip: torch.Tensor,
                       layers: list[tuple[str, nn.Conv3d]]) -> dict[str, torch.Tensor]:
    """Each layer's output (C x T x H x W) for one preprocessed clip (T x C x H x W)."""
    seen = {}
    hooks = [module.register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out[0].detach()))
        for name, module in layers]
    try:
        with torch.inference_mode():
            model(clip[None].to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def inside_sections(model: nn.Module, clip: torch.Tensor, preprocess, caption: str) -> list[str]:
    """The report's "Filters" and "Feature maps" for a model of 3-D convolutions: the first
    layer's kernels as strips over time, and `clip` (uint8 T x C x H x W, described by
    `caption`) through a few of its convolutions."""
    layers = convolutions_3d(model)
    if not layers:
        return [section("Filters", "<p>This model has no 3-D convolution, so there are no "
                        "kernels over time to show.</p>", "filters")]
    name, first = layers[0]
    k_t, k_h, k_w = first.kernel_size
    # R(2+1)D's first layer is spatial only (1 x 7 x 7); its next one mixes the frames
    spatial = " (spatial only: a later layer mixes the frames)" if k_t == 1 else ""
    kernels = figure(_as_png(kernel_strips(first.weight), max(SCALE, KERNEL_PIXELS // k_h)),
                     f"{name}: {min(MAX_KERNELS, first.out_channels)} of {first.out_channels} "
                     f"kernels (rows), each {_plural(k_t, 'frame')} of {k_h}x{k_w} (left to "
                     f"right){spatial}")
    model.eval()
    shown = _picked(layers, MAX_LAYERS)
    seen = record_activations(model, preprocess(clip), shown)
    maps = [figure(image_png(clip.permute(1, 2, 0, 3).reshape(clip.shape[1], clip.shape[2], -1)),
                   f"{caption}: its {len(clip)} frames")]
    for layer, _ in shown:
        grid, channels = feature_strips(seen[layer])
        maps.append(figure(_as_png(grid), f"{layer}: the {min(MAX_CHANNELS, channels)} most "
                           f"active of {channels} channels (rows) over "
                           f"{_plural(seen[layer].shape[1], 'time step')} (columns)"))
    return [section("Filters", kernels, "filters"),
            section("Feature maps", "".join(maps), "featuremaps")]
