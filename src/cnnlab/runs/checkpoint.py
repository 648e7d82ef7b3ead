"""Saving and loading without losing work or running anyone's code.

Every file is written atomically (files.py): a crash at any moment leaves either the old
file or the new, never half.
Weights are safetensors (no pickle); a checkpoint is one safetensors file whose tensors hold
the model and optimizer state and whose metadata holds the rest as JSON, so the pair can
never be torn apart.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save, safe_open
from torch import nn

from ..errors import UserError
from ..atomic import atomic_write_bytes

STATE_KEY = "cnnlab_state"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors stores each tensor once, contiguous; shared or strided views must be copied.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_weights(model: nn.Module, path: str | Path) -> None:
    atomic_write_bytes(path, save(_contiguous(model.state_dict())))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors weights; a shape or key mismatch is a clear UserError."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path} is not a readable safetensors weights file ({exc}).") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"the weights in {path} do not fit the model its config.json describes "
                        f"({mismatch(exc)}); was config.json edited?") from None
    return model


def _split_tensors(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor inside nested dicts/lists by a reference, collecting the tensors."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value
        return {"__tensor__": prefix}
    if isinstance(value, dict):
        inner = {str(k): _split_tensors(v, f"{prefix}.{k}", tensors) for k, v in value.items()}
        # JSON keys are strings, but an optimizer's state is keyed by parameter number.
        int_keys = bool(value) and all(isinstance(k, int) for k in value)
        return {"__int_keys__": inner} if int_keys else inner
    if isinstance(value, (list, tuple)):
        return [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__int_keys__"}:
            return {int(k): _join_tensors(v, tensors) for k, v in value["__int_keys__"].items()}
        return {k: _join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_tensors(v, tensors) for v in value]
    return value


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save nested state (state_dicts, counters, RNG states) as one atomic safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split_tensors(state, "s", tensors)
    data = save(_contiguous(tensors), metadata={STATE_KEY: json.dumps(skeleton)})
    atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            skeleton = json.loads((handle.metadata() or {})[STATE_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        return _join_tensors(skeleton, tensors)
    except KeyError as exc:  # a tensor the state refers to is not in the file
        raise UserError(f"{path} is not a complete cnnlab checkpoint (no tensor {exc}).") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable cnnlab checkpoint ({exc}).") from None


def mismatch(exc: RuntimeError) -> str:
    """What load_state_dict's many-line complaint comes to, in a few words."""
    parts, sizes = [], []
    for line in (line.strip() for line in str(exc).splitlines()[1:]):
        label, _, keys = line.partition(" key(s) in state_dict: ")
        if keys:  # "Missing key(s) in state_dict: "a", "b"." or "Unexpected ..."
            parts.append(f"{keys.count(',') + 1} {label.lower()} tensor(s)")
        elif line.startswith("size mismatch"):
            sizes.append(line.rstrip(".,"))
    if sizes:  # the first says enough
        parts.append(f"{len(sizes)} of another shape, the first: {sizes[0]}")
    return ", ".join(parts) or str(exc).splitlines()[0]
