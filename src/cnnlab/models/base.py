"""The shape every cnnlab model shares: a feature extractor, then a classification head.

The lectures call these the 'feature extractor' and the 'classification head / MLP head'
(004). Keeping them apart is what makes transfer learning need no per-model surgery:
`forward_features` gives the features, `reset_classifier` swaps the last layer.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import unknown_name
from ..layers import ACTIVATIONS, make_activation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STEMS = ("imagenet", "small")
# What every ImageNet architecture records: 224x224 RGB, ImageNet statistics, 1000 classes.
# Each family adds the smallest input its small-input stem (stem="small") takes.
IMAGENET = dict(input_size=(3, 224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                num_classes=1000)


class AuxOutputs(NamedTuple):
    """What a model with auxiliary classifiers (GoogLeNet) returns in training mode: the main
    logits, and side logits whose losses are added with their weights (0.3 in the paper)."""
    logits: torch.Tensor
    aux: tuple[torch.Tensor, ...]
    aux_weights: tuple[float, ...]

    def weighted(self, objective) -> torch.Tensor:
        """objective(main logits) plus each side head's objective times its weight."""
        loss = objective(self.logits)
        for weight, aux in zip(self.aux_weights, self.aux):
            loss = loss + weight * objective(aux)
        return loss


class FeaturesHeadModel(nn.Module):
    """Subclasses set `self.features` and `self.head`, or override forward_features and
    forward_head where torchvision's attribute names must be kept for its weights.

    forward_features returns the last feature maps (N x C x H x W, before any global pooling);
    forward_head turns them into class scores.
    """

    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def classifier_names(self) -> list[str]:
        """The Linear layers that output class scores: the last one registered, by default."""
        return [[name for name, m in self.named_modules() if isinstance(m, nn.Linear)][-1]]

    def get_classifier(self) -> nn.Linear:
        return self.get_submodule(self.classifier_names()[0])

    def reset_classifier(self, num_classes: int) -> None:
        """Replace every class-score layer with a fresh one for `num_classes` classes."""
        for name in self.classifier_names():
            old = self.get_submodule(name)
            self.set_submodule(name, nn.Linear(old.in_features, num_classes,
                                               bias=old.bias is not None,
                                               device=old.weight.device, dtype=old.weight.dtype))


def check_stem(stem: str) -> bool:
    """True for the small-input stem; an unknown stem name is a UserError."""
    if stem not in STEMS:
        raise unknown_name("stem", stem, STEMS)
    return stem == "small"


def choose(kind: str, name: str, table: dict):
    """table[name], or a UserError listing the valid names (layouts, configurations ...)."""
    if name not in table:
        raise unknown_name(kind, name, table)
    return table[name]


def activation(name: str) -> nn.Module:
    return make_activation(name)


__all__ = ["ACTIVATIONS", "AuxOutputs", "FeaturesHeadModel", "IMAGENET", "IMAGENET_MEAN",
           "IMAGENET_STD", "activation", "check_stem", "choose"]
