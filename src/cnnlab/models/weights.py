"""Pretrained weights: torchvision's ImageNet weights, or a weights file, into our models.

Our alexnet, vgg*, googlenet (layout="torchvision") and resnet* use torchvision's state-dict
key names, so its weights load without renaming. Nothing is downloaded unless the user asks
for weights="torchvision"; files load with torch.load(weights_only=True) or safetensors, so a
weights file can never run code.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from urllib.error import URLError

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import UserError

SOURCES = ("torchvision",)


def pretrained_options(info, weights: str | None) -> dict:
    """The options that give the layout the named weights were trained in (`info`: the
    model's registry.ModelInfo; registry.py imports this module, not the reverse)."""
    if weights is None:
        return {}
    if weights not in SOURCES:
        raise UserError(f"unknown weights '{weights}'; use weights='torchvision', or a file "
                        "with --weights-file PATH.")
    if info.torchvision is None:
        raise UserError(f"torchvision has no pretrained weights for {info.name}; models with "
                        "them: alexnet, vgg*, googlenet, resnet18-152, and for segmentation "
                        "fcn and deeplabv3 (resnet50 or resnet101 backbone) and lraspp.")
    return dict(info.torchvision)


def torchvision_state(name: str) -> dict[str, torch.Tensor]:
    """torchvision's default weights for `name` (ImageNet; COCO with VOC's classes for the
    segmenters), from torch's cache or downloaded."""
    from torchvision.models import get_model_weights
    try:
        url = get_model_weights(name).DEFAULT.url
    except ValueError:  # e.g. fcn on a resnet18, which torchvision never trained
        raise UserError(f"torchvision has no weights for {name}.") from None
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True,
                                                  weights_only=True)
    except (URLError, OSError) as exc:
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise UserError(f"could not download torchvision's {name} weights ({exc}); on a machine "
                        f"with network fetch {url} and pass it with --weights-file PATH, "
                        f"or copy it into {cache}.") from None


def read_weights_file(path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save'd .pth/.pt (tensors only)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a weights file; give a .safetensors or .pth "
                        "file (a run's own is RUN/model.safetensors).")
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words it 'Unsupported global: GLOBAL x', or for a blocked module such as os
        # 'unsupported GLOBAL posix.system whose module posix is blocked'.
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(exc))
        if found is None:
            raise UserError(f"{path} is not a readable weights file.") from None
        raise UserError(f"{path} holds Python objects ({found.group(1)}) besides tensors; "
                        "loading them could run code, so it was refused.") from None
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable weights file: {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    return state


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load `state` into `model`, all of it, except a classifier of another class count,
    which keeps its fresh initialisation (the usual start of fine-tuning)."""
    own = model.state_dict()
    heads = {f"{n}.{p}" for n in model.classifier_names() for p in ("weight", "bias")}
    fresh = {k for k in heads if k in state and k in own and state[k].shape != own[k].shape}
    # Weights for a part the user switched off (GoogLeNet's aux heads, set to None) are skipped.
    switched_off = {k for k in state if getattr(model, k.split(".")[0], "") is None}
    state = {k: v for k, v in state.items() if k not in fresh | switched_off}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise UserError(f"the weights from {source} do not fit this model: "
                        f"{(detail or [str(exc)])[0]}") from None
    missing = [k for k in missing if k not in fresh]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(f"the weights from {source} do not fit this model ({what}); "
                        "were they saved from the same architecture and options?")
    return model


def load_pretrained(model: nn.Module, weights: str | None = None, weights_file=None) -> nn.Module:
    """Load weights="torchvision" or a weights file into a built registered model."""
    if weights is not None and weights_file is not None:
        raise UserError("give either weights='torchvision' or a weights file, not both.")
    if weights_file is not None:
        return load_state(model, read_weights_file(weights_file), str(weights_file))
    pretrained_options(model.info, weights)  # validates the name and that torchvision has them
    # A segmenter's weights are named for its head and backbone too (fcn_resnet50).
    name = getattr(model, "torchvision_name", model.info.name)
    return load_state(model, torchvision_state(name), f"torchvision's {name}")
