"""Optimisers and learning-rate schedules by name, from small name -> factory tables.

Each factory reads what it needs from a config (a TrainConfig: lr, momentum, weight_decay,
step_size, gamma, epochs); the engine does not import config/, which sits above it.
"""
from __future__ import annotations

import torch

from .eager_optim import eager, fill_markers

# foreach=True everywhere: one multi-tensor operation per step of the update, not one per
# parameter tensor; torch chooses it on GPUs but not on CPUs, where the per-tensor loop made
# Adam's step about 1.5x as long for the lecture CNN at batch 32. The numbers are the same
# (the tests compare them bit for bit); `fused` would be faster still but rounds differently.
OPTIMIZERS = {
    # The lectures' choice: optim.SGD(cnn.parameters(), lr=1e-3, momentum=0.9).
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                             weight_decay=c.weight_decay, foreach=True),
    # Nesterov's look-ahead: the gradient is taken where momentum is about to carry the
    # weights, which damps the overshoot of plain momentum (the fast CIFAR-10 recipes' choice).
    "nesterov": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                                  weight_decay=c.weight_decay, nesterov=True,
                                                  foreach=True),
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, betas=(c.momentum, 0.999),
                                               weight_decay=c.weight_decay, foreach=True),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, betas=(c.momentum, 0.999),
                                                 weight_decay=c.weight_decay, foreach=True),
}

# name -> (factory(optimizer, config, steps_per_epoch), steps every batch?)
SCHEDULERS = {
    "none": (lambda opt, c, steps: None, False),
    # The lectures' StepLR(step_size=7, gamma=0.1): multiply the rate by gamma every 7 epochs.
    "step": (lambda opt, c, steps: torch.optim.lr_scheduler.StepLR(
        opt, step_size=c.step_size, gamma=c.gamma), False),
    "cosine": (lambda opt, c, steps: torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=c.epochs), False),
    # One-cycle warms up to --lr and anneals within the run, so it must step every batch.
    # Each parameter group peaks at its own rate (transfer learning: backbone below head).
    "onecycle": (lambda opt, c, steps: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=c.epochs * steps), True),
}


def make_optimizer(params, config) -> torch.optim.Optimizer:
    if getattr(config, "compile", False):  # the compiler is loaded anyway
        return OPTIMIZERS[config.optimizer](params, config)
    fill_markers(torch.optim.Optimizer)  # its constructor calls a marked method
    return eager(OPTIMIZERS[config.optimizer](params, config))


# From this many steps on one-cycle reaches its peak; below, it is checked: torch's schedule
# over 1 step runs at 4e-6 of --lr (2 steps reach 0.81 of it, 3 steps 0.99).
FEW_ONECYCLE_STEPS = 20


def make_scheduler(optimizer, config, steps_per_epoch: int):
    """(scheduler or None, whether it steps per batch rather than per epoch)."""
    factory, per_batch = SCHEDULERS[config.scheduler]
    scheduler = factory(optimizer, config, steps_per_epoch)
    if config.scheduler == "onecycle" and config.epochs * steps_per_epoch < FEW_ONECYCLE_STEPS:
        _warn_few_steps(config, config.epochs * steps_per_epoch)
    return scheduler, per_batch


def onecycle_rates(peak: float, steps: int) -> list[float]:
    """The rate of each of `steps` one-cycle steps peaking at `peak`, as torch computes them."""
    fill_markers(torch.optim.Optimizer)  # a plain SGD's first step would import the compiler
    optimizer = eager(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def _warn_few_steps(config, steps: int) -> None:
    """Say so when the schedule's highest rate is under half of --lr."""
    from ..logs import LOGGER
    highest = max(onecycle_rates(config.lr, steps))
    if highest >= config.lr / 2:
        return
    LOGGER.warning(
        f"the one-cycle schedule (--scheduler onecycle, the default) over only {steps} "
        f"optimisation step{'s' if steps != 1 else ''} never comes near --lr {config.lr:g}: "
        f"its highest rate is {highest:.3g}; for so short a run give --scheduler none "
        "(a constant rate), or more --epochs or smaller batches.")
