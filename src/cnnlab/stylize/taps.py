"""A frozen network's inner layers as a function of the image: what style transfer compares.

Forward hooks keep the named layers' outputs; the deepest one stops the forward pass, so the
layers after it (and the classifier) never run.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


class _Done(Exception):
    """Raised by the deepest tap's hook: nothing after it is needed, so it is never run."""


class FeatureTaps(nn.Module):
    """A frozen network that, given images in [0, 1], returns the maps of the named layers."""

    def __init__(self, body: nn.Module, taps: dict[str, str], mean, std):
        super().__init__()
        self.body = body.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self._maps: dict[str, torch.Tensor] = {}
        modules = dict(body.named_modules())
        self._wanted = len(taps)
        for label, path in taps.items():
            modules[path].register_forward_hook(self._keep(label))

    def _keep(self, label: str):
        def hook(_module, _args, output):
            self._maps[label] = output
            if len(self._maps) == self._wanted:
                raise _Done
        return hook

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        self._maps = {}
        try:
            self.body((image - self.mean) / self.std)
        except _Done:
            pass
        return self._maps


def load_features(body: nn.Module, state: dict, prefix: str, source: str) -> None:
    """Every tensor of `body` from `state`'s keys under `prefix`; the rest (the head) unused."""
    own = body.state_dict()
    missing = [k for k in own if prefix + k not in state]
    wrong = [k for k in own if prefix + k in state and state[prefix + k].shape != own[k].shape]
    if missing or wrong:
        what = f"missing {missing[:2]}" if missing else f"other shapes for {wrong[:2]}"
        raise UserError(f"the weights from {source} do not fit the network ({what}).")
    body.load_state_dict({k: state[prefix + k] for k in own})
