"""`cnnlab explain batchnorm`: what batch normalisation does to the values inside a network
(004: 'after first layer: scale of data may not be the same anymore! must apply normalization
inside the network'; 'mean becomes 0, std becomes 1: values end up roughly in [-2, 2]').

Two stacks of `depth` 3x3 convolutions with ReLUs, as a learner writes them with nn.Conv2d
(PyTorch's default initialisation), one with nn.BatchNorm2d after every convolution. For
each layer: the mean and standard deviation of what goes into its ReLU (the batch norm's
output, or the bare convolution's) over a batch of held-out digits, and the share of those
values inside [-2, 2]; at initialisation and again after some SGD steps.

Measured in training mode, with the batch's own statistics: that is what every training
step sees (at initialisation the running statistics are still 0 and 1, so evaluation mode
would show an unnormalised network).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .claims_pictures import check_name
from .claims_steps import accuracy, count, digits_tensors, rate, train_steps
from .claims_fit import one_thread

WIDTH = 16  # channels of every convolution: the spread, not the width, is the point here
LOOK = 512  # held-out digits the statistics are taken over
RANGE = 2.0  # 004's [-2, 2]


def conv_stack(depth: int, batch_norm: bool, in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Conv2d(in_channels if i == 0 else WIDTH, WIDTH, 3, padding=1,
                                bias=not batch_norm))  # the norm's shift replaces the bias
        if batch_norm:
            layers.append(nn.BatchNorm2d(WIDTH))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, num_classes))


@torch.no_grad()
def spread(model: nn.Sequential, images: torch.Tensor) -> list[dict]:
    """Per layer, what enters its ReLU: mean, std, and the share of values inside [-2, 2]."""
    model = copy.deepcopy(model).train()  # batch statistics, leaving the original's running ones
    taps = [m for m, after in zip(model, list(model)[1:]) if isinstance(after, nn.ReLU)]
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out)) for m in taps]
    model(images)
    for hook in hooks:
        hook.remove()
    return [{"mean": float(v.mean()), "std": float(v.std()),
             "share_in_range": float((v.abs() <= RANGE).double().mean()),
             "min": float(v.min()), "max": float(v.max())} for v in seen]


def observe(batch_norm: bool, depth: int, steps: int, batch_size: int, lr: float, seed: int,
            data) -> dict:
    torch.manual_seed(seed)
    model = conv_stack(depth, batch_norm)
    look = data.test_images[:LOOK]
    at_init = spread(model, look)
    losses = train_steps(model, data, steps, batch_size, lr, seed)
    return {"name": f"{depth} convolutions {'with' if batch_norm else 'without'} batch norm",
            "batch_norm": batch_norm, "at_init": at_init, "trained": spread(model, look),
            "final_loss": losses[-1],
            "test_accuracy": accuracy(model, data.test_images, data.test_labels)}


def explain_batchnorm(depth="20", steps="30", batch_size="64", lr="0.05", seed="0",
                      out=None) -> dict:
    depth, steps = count(depth, "--depth", 1, 200), count(steps, "--steps", 1, 100_000)
    batch_size, lr = count(batch_size, "--batch-size", 2, 4096), rate(lr)
    seed = count(seed, "--seed", 0, 2**32 - 1)
    check_name(out)
    data = digits_tensors()
    with one_thread():
        networks = [observe(norm, depth, steps, batch_size, lr, seed, data) for norm in (True, False)]
    result = {"depth": depth, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "dataset": "digits", "networks": networks}
    for net in networks:
        for moment in ("at_init", "trained"):
            stds = [layer["std"] for layer in net[moment]]
            net[f"std_range_{moment}"] = [min(stds), max(stds)]
            net[f"share_in_range_{moment}"] = min(layer["share_in_range"] for layer in net[moment])
    if out is not None:
        from .claims_pictures import save_activation_spread
        result["picture"] = save_activation_spread(networks, out, _title(result))
    return result


def _title(result: dict) -> str:
    return (f"{result['depth']} convolutions on digits, before their ReLU: at initialisation and "
            f"after {result['steps']} SGD steps of {result['batch_size']} (lr {result['lr']:g})")


def format_batchnorm(result: dict) -> str:
    lines = [_title(result), ""]
    for net in result["networks"]:
        lines.append(f"{net['name']}: test accuracy {net['test_accuracy']:.1%}, last loss "
                     f"{net['final_loss']:.3f}")
        lines.append("  layer   mean at init  std at init   mean trained  std trained  "
                     "in [-2, 2] trained")
        for i, (a, b) in enumerate(zip(net["at_init"], net["trained"]), start=1):
            lines.append(f"  {i:5d}   {a['mean']:12.3g}  {a['std']:11.3g}   {b['mean']:12.3g}  "
                         f"{b['std']:11.3g}  {b['share_in_range']:17.1%}")
        low, high = net["std_range_trained"]
        lines.append(f"  std across layers after training: {low:.3g} to {high:.3g}; at least "
                     f"{net['share_in_range_trained']:.1%} of every layer's values in [-2, 2]")
        lines.append("")
    if "picture" in result:
        lines.append(f"picture: {result['picture']}")
    return "\n".join(lines).rstrip()
