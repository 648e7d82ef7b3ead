"""Where the work runs and how it is seeded."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use cpu, cuda, cuda:N, mps or auto.") from None
    available = {"cpu": lambda: True,
                 "cuda": lambda: torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
                 "mps": lambda: bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()}
    if not available.get(device.type, lambda: False)():
        raise UserError(f"device '{name}' is not available on this machine; try --device auto.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
