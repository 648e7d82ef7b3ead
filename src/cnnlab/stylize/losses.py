"""The three losses of neural style transfer (Gatys, Ecker & Bethge 2016, 'Image style transfer
using convolutional neural networks', section 2), as relative squared errors.

- Content: how far the image's features in one layer are from the content image's,
  ||F - P||^2 / ||P||^2. The paper's 1/2 ||F - P||^2 has the same minimum; dividing by the
  target's energy makes the number mean something on its own (0.25: the features are off by
  half their size in root mean square) and the same on every backbone.
- Style: for each style layer the Gram matrix G = F F^T / M of its N channels over its M
  positions, the channels' correlations with where they occur thrown away; the layer's loss
  is ||G - A||^2 / ||A||^2 for the style image's Gram matrix A, and the style loss their
  mean. The paper's E_l = ||G - A||^2 / (4 N^2) (with the same normalisation by M) differs
  from this by one constant per layer, i.e. by the layer weights w_l only; ours let one
  --style-weight serve VGG19 and EfficientNet-Lite0, whose activations differ in scale.
- Total variation: the mean squared difference of neighbouring pixels, a smoothness prior
  (Mahendran & Vedaldi 2015) that removes the high-frequency speckle the optimiser leaves.
"""
from __future__ import annotations

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """B x N x H x W feature maps -> B x N x N channel correlations, averaged over the
    M = H W positions (so the size of the image does not change their scale)."""
    b, n, h, w = features.shape
    flat = features.reshape(b, n, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def relative_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 / ||target||^2; an all-zero target (a blank style image's layer
    that never fires) counts as energy 1, i.e. the plain squared error."""
    energy = target.pow(2).sum()
    energy = torch.where(energy > 0, energy, torch.ones_like(energy))
    return (value - target).pow(2).sum() / energy


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return relative_error(features, target)


def style_loss(features: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """The mean over the style layers (the paper's w_l = 1/5 for its five) of each layer's
    relative Gram error; `targets` are the style image's Gram matrices."""
    losses = [relative_error(gram_matrix(f), g) for f, g in zip(features, targets, strict=True)]
    return torch.stack(losses).mean()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between each pixel and its right and lower neighbours."""
    down = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    right = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return down + right
