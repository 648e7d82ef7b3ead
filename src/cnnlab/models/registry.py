"""The model registry: every architecture by name, with the facts needed to feed it.

A builder is registered with its metadata (family, default input size, normalisation,
paper); `create_model` builds it for a data set's classes and channels.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import UserError, unknown_name


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    input_size: tuple[int, int, int]  # C, H, W the architecture was designed for
    paper: str
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    builder: Callable[..., nn.Module] = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(*, family: str, input_size, paper: str, mean=(0.5,), std=(0.5,)):
    """Decorator: `@register_model(family=..., input_size=(1, 28, 28), paper=...)`."""
    def decorate(builder):
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name} is registered twice")
        _REGISTRY[name] = ModelInfo(name, family, tuple(input_size), paper,
                                    tuple(mean), tuple(std), builder)
        return builder
    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = 10, in_channels: int | None = None,
                 weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model; `in_channels` defaults to what the architecture expects."""
    info = model_info(name)
    if weights is not None:
        raise UserError(f"model {name} has no pretrained weights named {weights!r}.")
    if in_channels is None:
        in_channels = info.input_size[0]
    accepted = inspect.signature(info.builder).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for key in kwargs:
        if key not in accepted and not takes_any:
            raise UserError(f"model {name} has no option '{key}'.")
    try:
        model = info.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
    except TypeError as exc:
        # Builders forward **kwargs to the model class, so a misspelt option surfaces here.
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unexpected is None:
            raise
        raise UserError(f"model {name} has no option '{unexpected.group(1)}'.") from None
    model.info = info
    return model
