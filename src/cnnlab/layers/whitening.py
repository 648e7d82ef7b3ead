"""A first convolution that whitens image patches, fitted from data rather than learned.

The covariance of small patches of natural images is dominated by a few smooth directions
(the mean brightness, gentle gradients); high-frequency directions are tiny. Projecting each
k x k patch onto the eigenvectors of that covariance and dividing by the square root of the
eigenvalues (PCA whitening) hands the next layer inputs with every direction at unit
variance, which the fast CIFAR-10 recipes found speeds up training (Page 2018; Jordan's
hlb-CIFAR10 and airbench). The filters are computed once, before training, from a few
thousand training images, and never trained: they are buffers, not parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Added to the eigenvalues before the square root, so the near-empty directions of the patch
# space (noise, compression artefacts) are not blown up into huge activations.
EPS = 5e-4
CHUNK = 256  # images unfolded at a time: 5,000 images' patches at once would take ~0.5 GB


class WhiteningConv(nn.Conv2d):
    """k x k convolution with 2 * C * k * k outputs: each whitened patch direction twice, with
    both signs, so the activation after it keeps the negative half too (as airbench does).

    It is a Conv2d (summaries, `cnnlab filters` and receptive fields see an ordinary
    convolution) whose weight and bias are buffers: in the state dict and checkpoints, moved
    with the model, never given a gradient. Call `fit(images)` before training.
    """

    def __init__(self, in_channels: int, kernel_size: int = 2, eps: float = EPS):
        super().__init__(in_channels, 2 * in_channels * kernel_size ** 2, kernel_size)
        weight, bias = self.weight.detach(), self.bias.detach()
        del self.weight, self.bias
        # Until fitted, the usual random initialisation: the model still runs (tests, summaries).
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.eps = eps

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from `images` (N x C x H x W, normalised as the network sees them):
        afterwards the first half of the outputs has zero mean and, up to EPS, the identity
        covariance over the patches of `images`; the second half is its negative."""
        mean, covariance = patch_moments(images, self.kernel_size[0])
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp(min=0) + self.eps)[:, None]
        weight = torch.cat([filters, -filters])
        self.weight.copy_(weight.reshape(self.weight.shape))
        self.bias.copy_(-weight @ mean)  # centred: the filters see patch minus mean patch


def patch_moments(images: torch.Tensor, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D) and covariance (D x D) of every k x k patch of `images`, D = C * k * k, in
    float64, in the order of a convolution's flattened weight (channel, row, column)."""
    total, outer, count = 0.0, 0.0, 0
    for chunk in images.split(CHUNK):
        patches = F.unfold(chunk.float(), kernel_size)  # N x D x positions
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1]).double()
        total = total + patches.sum(dim=0)
        outer = outer + patches.T @ patches
        count += len(patches)
    mean = total / count
    return mean, outer / count - torch.outer(mean, mean)


def fit_whitening(model: nn.Module, batches, images: int = 5000) -> int:
    """Fit every WhiteningConv of `model` (each must see the network's input) on the first
    `images` inputs of `batches` (training batches, augmented as training sees them), and
    leave `batches` where it was, so training sees the same batches as without this.
    Returns the number of images used (0 when the model has no whitening layer)."""
    layers = [m for m in model.modules() if isinstance(m, WhiteningConv)]
    if not layers:
        return 0
    state, taken, count = batches.state_dict(), [], 0
    for inputs, _ in batches:
        taken.append(inputs)
        count += len(inputs)
        if count >= images:
            break
    batches.load_state_dict(state)
    sample = torch.cat(taken)[:images].to(layers[0].weight.device)
    for layer in layers:
        layer.fit(sample)
    return len(sample)
