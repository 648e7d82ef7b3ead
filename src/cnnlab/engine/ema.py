"""An exponential moving average (EMA) of the weights, which evaluation uses instead of them.

After every optimisation step the average moves a little towards the current weights:
    average <- decay * average + (1 - decay) * weights
SGD's last iterate jitters around a minimum at the scale of the learning rate; the average
of recent iterates sits nearer its centre, so it usually scores higher than the weights it
averages (Polyak & Juditsky 1992; used by the fast CIFAR-10 recipes and timm's ModelEma).
Batch-norm statistics are averaged alongside, so the averaged network is self-consistent.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

# A fixed decay would keep the random initial weights in the average for its first hundreds
# of steps; min(decay, (1 + n) / (WARMUP + n)) after n updates lets it follow the weights
# closely at first (the num_updates rule of TensorFlow's ExponentialMovingAverage).
WARMUP = 10


def ema_update(decay: float):
    """AveragedModel's multi_avg_fn: one foreach update per device and dtype, with the
    warm-up rate computed on the device, so no step waits for the host."""
    @torch.no_grad()
    def update(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):  # counters (num_batches_tracked): copied
            torch._foreach_copy_(averaged, current)
            return
        rate = (1 + n_averaged) / (WARMUP + n_averaged)
        step = 1 - rate.clamp(max=decay).to(averaged[0].dtype)
        torch._foreach_add_(averaged, torch._foreach_mul(torch._foreach_sub(current, averaged), step))
    return update


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """A copy of `model` whose `update_parameters(model)` moves it towards `model`'s weights
    and buffers; its state_dict (the copy and the update count) resumes it exactly."""
    return AveragedModel(model, multi_avg_fn=ema_update(decay), use_buffers=True)
