"""An embedding network for metric learning (tasks/embed.py): any classification backbone's
forward_features, global average pooling, a linear projection to `embedding_dim`, and L2
normalisation, so that a dot product of two embeddings is their cosine similarity.

The network also holds one weight vector per training class: ArcFace (Deng et al. 2019)
compares an embedding with each normalised class vector. They serve only the loss; what the
model returns, in training and evaluation, is the embedding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import create_model, model_info, register_model


class EmbeddingNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, backbone: str = "lenet5",
                 embedding_dim: int = 64, stem: str | None = None, grid: int = 1):
        super().__init__()
        if backbone == "embedding":
            raise ValueError("an embedding network cannot be its own backbone")
        options = {} if stem is None else {"stem": stem}
        self.backbone = create_model(backbone, num_classes=num_classes, in_channels=in_channels,
                                     **options)
        # the features' channels, from one small forward pass (on the meta device when the
        # registry builds it there)
        _, *side = model_info(backbone).smallest_input_size
        with torch.no_grad():
            probe = self.backbone.forward_features(torch.zeros(1, in_channels, *side))
        # grid 1: global average pooling; grid g: average pooling to g x g cells, flattened
        # (keeps where in the image a feature is: what tells small digits apart)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.project = nn.Linear(probe.shape[1] * grid * grid, embedding_dim)
        self.class_weights = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone.forward_features(x)
        if features.dim() == 4:
            features = self.pool(features)
        return F.normalize(self.project(features.flatten(1)), dim=1)

    def class_cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos(theta) between each embedding and each normalised class weight: N x classes."""
        return embeddings @ F.normalize(self.class_weights, dim=1).t()


@register_model(family="embedding", input_size=(1, 28, 28), architecture=EmbeddingNet,
                task="embed", paper="Deng et al. 2019, ArcFace: additive angular margin loss for "
                "deep face recognition; Schroff et al. 2015, FaceNet (a backbone's features, "
                "pooled, projected and L2-normalised)")
def embedding(num_classes: int = 10, in_channels: int = 1, backbone: str = "lenet5",
              embedding_dim: int = 64, stem: str | None = None, grid: int = 1):
    return EmbeddingNet(num_classes, in_channels, backbone, embedding_dim, stem, grid)
