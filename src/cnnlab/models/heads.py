"""A new classification head of several layers for a pretrained network (003: 'add new layers
and retrain them only'; 001 replaces only the output layer).

`add_hidden_layers(model, 2)` puts Linear(features, 256), ReLU, Linear(256, classes) where the
model's class-score layer was. Training knows it as the new head (training/transfer.py trains
all of it under --transfer features), and a run's model is rebuilt with the same head from
its config (--head-layers), so evaluate, predict and resume load its weights.
"""
from __future__ import annotations

from torch import nn

HIDDEN = 256  # units of each added layer: between lite0's 1,280 features and a few classes
MAX_LAYERS = 4  # more stacked dense layers on fixed features only add parameters to fit


class HiddenLayersHead(nn.Sequential):
    """(Linear, ReLU) x (layers - 1), then the Linear to the classes."""

    def __init__(self, in_features: int, num_classes: int, layers: int, hidden: int = HIDDEN,
                 bias: bool = True):
        parts: list[nn.Module] = []
        width = in_features
        for _ in range(layers - 1):
            parts += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        super().__init__(*parts, nn.Linear(width, num_classes, bias=bias))


def add_hidden_layers(model: nn.Module, layers: int) -> nn.Module:
    """`model` with each class-score layer replaced by a fresh head of `layers` Linear layers
    (1: left as it is)."""
    if layers <= 1:
        return model
    for name in model.classifier_names():
        old = model.get_submodule(name)
        head = HiddenLayersHead(old.in_features, old.out_features, layers,
                                bias=old.bias is not None)
        model.set_submodule(name, head.to(device=old.weight.device, dtype=old.weight.dtype))
    return model


def new_head_parameters(model: nn.Module) -> set[str]:
    """The names of the parameters inside every HiddenLayersHead of `model`."""
    return {f"{prefix}.{name}" for prefix, module in model.named_modules()
            if isinstance(module, HiddenLayersHead) for name, _ in module.named_parameters()}
