"""The shape every cnnlab model shares: a feature extractor, then a classification head.

The lectures call these the 'feature extractor' and the 'classification head / MLP head'
(004). Keeping them apart is what makes transfer learning need no per-model surgery:
`forward_features` gives the features, `reset_classifier` swaps the last layer.
"""
from __future__ import annotations

from torch import nn


class FeaturesHeadModel(nn.Module):
    """Subclasses set `self.features` and `self.head`; the head's last Linear is the classifier."""

    features: nn.Module
    head: nn.Module

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, features):
        return self.head(features)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the output layer with a fresh one for `num_classes` classes."""
        name, old = [(n, m) for n, m in self.head.named_modules() if isinstance(m, nn.Linear)][-1]
        parent = self.head.get_submodule(name.rpartition(".")[0]) if "." in name else self.head
        setattr(parent, name.rpartition(".")[2],
                nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    from ..errors import unknown_name
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()
