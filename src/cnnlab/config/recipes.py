"""Recipes: named sets of training defaults that reproduce a published way of training.

`cnnlab train --recipe NAME` starts from the recipe's values instead of TrainConfig's own;
a --config file and the flags given on the command line still override each of them, so
`--recipe cifar10-fast --dataset shapes --epochs 2` keeps the rest of the recipe.

cifar10-fast gathers the techniques of the fast CIFAR-10 training line: David Page's "How to
train your ResNet" (2018) and Keller Jordan's hlb-CIFAR10 and airbench (2023-2024). Their
code is not copied; each technique is cnnlab's own:
    the whole data set on the device, flipped and translated a batch at a time   (data_loading auto)
    a small ResNet-style network whose first layer whitens 2x2 patches            (models/cifar_fast.py,
                                                                                  layers/whitening.py)
    label smoothing, Nesterov momentum, a one-cycle learning-rate schedule
    an exponential moving average of the weights for evaluation                   (engine/ema.py)
    the logits of each test image and of its mirror image averaged                (tasks/tta.py)
"""
from __future__ import annotations

from ..errors import unknown_name

RECIPES = {
    "cifar10-fast": {
        "model": "cifar_fast",
        "dataset": "cifar10",
        "augment": "flip-crop",     # mirror, and translate by up to 4 px (reflect-filled)
        "batch_size": 512,          # images per step
        "epochs": 10,               # passes over the 50,000 training images
        "optimizer": "nesterov",
        "lr": 0.4,                  # peak rate, per step on the batch's mean loss
        "momentum": 0.9,            # onecycle swings it between 0.85 and 0.95
        "weight_decay": 5e-4,       # L2 penalty on every trained weight, per step
        "scheduler": "onecycle",    # warm up for 30% of the steps, then anneal to ~0
        "label_smoothing": 0.2,
        "ema": 0.99,                # per step: the average spans about the last 100 steps
        "tta": "flip",
    },
}


def recipe_defaults(name: str) -> dict:
    """The TrainConfig values recipe `name` sets (a copy the caller may change)."""
    if name not in RECIPES:
        raise unknown_name("recipe", name, RECIPES)
    return dict(RECIPES[name])
