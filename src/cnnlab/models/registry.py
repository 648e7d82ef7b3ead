"""The model registry: every architecture by name, with the facts needed to feed it.

A builder is registered with its metadata (family, default input size, normalisation,
paper); `create_model` builds it for a data set's classes and channels, checks its options,
and loads pretrained weights when asked.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import torch
from torch import nn

from ..errors import UserError, unknown_name

# Images no larger than this on their longer side (digits 8, MNIST 28, CIFAR 32, Tiny ImageNet
# 64) train an ImageNet architecture through its small-input stem, near their own size, rather
# than blown up to 224x224: up to 784 times less work for the same pixels.
SMALL_IMAGE_SIDE = 64
_BUILD_ARGS = ("num_classes", "in_channels")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    input_size: tuple[int, int, int]  # C, H, W the architecture was designed for
    paper: str
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    num_classes: int = 10             # the classes it was designed for (ImageNet: 1000)
    # The smallest C, H, W the small-input stem (stem="small") takes; smaller images are
    # resized up to it. None where the architecture is small already.
    small_input_size: tuple[int, int, int] | None = None
    # The class the builder forwards its keyword options to; its defaults are the options.
    architecture: type | None = field(default=None, repr=False, compare=False)
    # Options that give torchvision's layout of the same name, whose weights then load;
    # None where torchvision has no weights for it.
    torchvision: dict | None = field(default=None, compare=False)
    builder: Callable[..., nn.Module] = field(default=None, repr=False, compare=False)
    task: str = "classify"  # what its outputs are (tasks/): class scores, a mask's scores ...

    @property
    def options(self) -> tuple[str, ...]:
        """Keyword options a user may pass (norm, stem, layout, dropout ...)."""
        return tuple(self.option_defaults)

    @property
    def option_defaults(self) -> dict:
        """Each option with its default, whose type is the type a value must have."""
        params = dict(inspect.signature(self.builder).parameters)
        if any(p.kind is p.VAR_KEYWORD for p in params.values()) and self.architecture:
            params.update(inspect.signature(self.architecture.__init__).parameters)
        return {name: p.default for name, p in params.items() if name not in _BUILD_ARGS
                and p.default is not p.empty and p.kind is not p.POSITIONAL_ONLY}

    @property
    def accepts_norm(self) -> bool:
        return "norm" in self.options

    @property
    def smallest_input_size(self) -> tuple[int, int, int]:
        return self.small_input_size or self.input_size

    def check_options(self, kwargs: dict) -> None:
        defaults = self.option_defaults
        for key, value in kwargs.items():
            if key == "norm" and not self.accepts_norm:
                families = sorted({i.family for i in _REGISTRY.values() if i.accepts_norm})
                raise UserError(f"model {self.name} keeps its own normalisation; a norm can be "
                                f"chosen for the {', '.join(families)} models.")
            if key not in defaults:
                raise UserError(f"model {self.name} has no option '{key}'; " + (
                    f"its options are: {', '.join(defaults)}." if defaults
                    else "it takes no options."))
            default = defaults[key]
            wanted = _KIND_OF.get(type(default))
            if wanted and not _is_kind(value, wanted[0]):
                raise UserError(f"model {self.name}'s option {key} takes {wanted[1]} (its "
                                f"default is {default!r}), not {value!r}.")
            listed = wanted and wanted[0] is tuple and default
            item = _KIND_OF.get(type(default[0])) if listed else None
            if item and not all(_is_kind(v, item[0]) for v in value):
                raise UserError(f"model {self.name}'s option {key} takes a list of "
                                f"{item[1].removeprefix('a ')}s (its default is {default!r}), "
                                f"not {value!r}.")

    def build(self, num_classes: int | None = None, in_channels: int | None = None,
              **kwargs) -> nn.Module:
        self.check_options(kwargs)
        try:
            model = self.builder(
                num_classes=self.num_classes if num_classes is None else num_classes,
                in_channels=self.input_size[0] if in_channels is None else in_channels, **kwargs)
        except (ValueError, TypeError, RuntimeError) as exc:
            if not kwargs:  # cnnlab's own defaults failing is a bug, not the user's doing
                raise
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise UserError(f"model {self.name} cannot be built with {given}: "
                            f"{str(exc).strip().rstrip('.')}.") from None
        model.info = self
        return model


# What a value must be, judged by the option's default (an option whose default is None
# takes anything its builder checks): the type, and how to say it.
_KIND_OF = {bool: (bool, "true or false"), int: (int, "a whole number"),
            float: (float, "a number"), str: (str, "a name"),
            tuple: (tuple, "a list"), list: (tuple, "a list")}


def _is_kind(value, kind: type) -> bool:
    if kind is bool or isinstance(value, bool):
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    if kind is tuple:
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(*, family: str, input_size, paper: str, mean=(0.5,), std=(0.5,),
                   num_classes: int = 10, small_input_size=None, architecture=None,
                   torchvision: dict | None = None, task: str = "classify"):
    """Decorator: `@register_model(family=..., input_size=(1, 28, 28), paper=...)`."""
    def decorate(builder):
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name} is registered twice")
        small = tuple(small_input_size) if small_input_size else None
        _REGISTRY[name] = ModelInfo(name, family, tuple(input_size), paper, tuple(mean),
                                    tuple(std), num_classes, small, architecture, torchvision,
                                    builder, task)
        return builder
    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
    return _REGISTRY[name]


def create_model(name: str, num_classes: int | None = None, in_channels: int | None = None,
                 weights: str | None = None, weights_file=None, **kwargs) -> nn.Module:
    """Build a registered model.

    num_classes and in_channels default to the architecture's own (ImageNet models: 1000 and
    3). weights="torchvision" loads torchvision's ImageNet weights (downloaded once, when there
    is network); weights_file loads a .pth/.pt state dict or a .safetensors file. With either,
    a classifier of a different size than the weights' starts fresh.
    """
    info = model_info(name)
    if weights is None and weights_file is None:
        return info.build(num_classes, in_channels, **kwargs)
    from .weights import load_pretrained, pretrained_options
    model = info.build(num_classes, in_channels, **{**pretrained_options(info, weights), **kwargs})
    return load_pretrained(model, weights, weights_file)


@lru_cache(maxsize=None)
def parameter_count(name: str) -> int:
    """Parameters of the default configuration, counted on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())


def dense_input_size(info: ModelInfo, image_size) -> tuple[int, int, int]:
    """A fully convolutional model (a label per pixel) takes the images at their own size,
    scaled down only where the longer side exceeds the architecture's design size (FCN and
    DeepLabV3: torchvision's 520): a user's 4000x3000 photographs would not fit in memory."""
    channels, *sides = info.input_size
    scale = min(1.0, max(sides) / max(image_size))
    return (channels, *(max(1, round(side * scale)) for side in image_size))


def plan_input(info: ModelInfo, image_size, kwargs: dict, pretrained: bool = False):
    """The input size (C, H, W) to train `info`'s model on images of `image_size` (H, W; None
    if unknown), and its options with the stem chosen.

    `kwargs` may name the stem. Otherwise images up to SMALL_IMAGE_SIDE take the small-input
    stem at their own size, raised to the stem's smallest input (digits' 8x8 stay 8x8 for a
    ResNet, become 32x32 for VGG's five pools); larger images, and pretrained weights (trained
    through the ImageNet stem), take the ImageNet stem at its input size, or for a model with
    a label per pixel at dense_input_size.
    """
    design = info.input_size
    if info.task != "classify" and image_size is not None:
        design = dense_input_size(info, image_size)
    if info.small_input_size is None:
        return design, dict(kwargs)
    stem = kwargs.get("stem")
    if stem is None:
        small = image_size is not None and max(image_size) <= SMALL_IMAGE_SIDE
        stem = "small" if small and not pretrained else "imagenet"
    if stem != "small":
        return design, {**kwargs, "stem": stem}
    channels, *floor = info.small_input_size
    sides = image_size if image_size is not None else floor
    return (channels, *(max(s, f) for s, f in zip(sides, floor))), {**kwargs, "stem": stem}
