"""`cnnlab explain depth`: a plain deep network beside its residual twin (000: ResNet's 'skip
connections to improve gradient propagation', 'prevents the gradient dying out'; He et al.
2016, Fig. 1 and 6: the deeper plain network trains worse, the residual one does not).

plainN and resnetN (models/cifar_resnet.py) have the same convolutions, batch norms and
parameters; only the shortcut differs. Both start from the same seed and train for the same
steps on the same batches of digits, and the norm of every convolution's weight gradient is
recorded at every step.

What it shows, and where the slide's picture needs care: with batch norm, plain56's first
layers do not start with small gradients. At step 0 they are about a hundred times larger than
resnet56's (batch norm in a deep stack without shortcuts amplifies gradients on the way back;
Yang et al. 2019, 'A mean field theory of batch normalization'). The first updates then
scale its early weights up, and batch norm makes a weight's gradient shrink as the weight
grows, so from a few steps on the gradient reaching the early layers does die out: its median
over the run is far below resnet56's, and the plain network learns little. The identity path
keeps resnet56's early gradients steady throughout.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..models import create_model
from .claims_pictures import check_name
from .claims_fit import one_thread
from .claims_steps import Digits, accuracy, count, digits_tensors, rate, train_steps

DEPTHS = (20, 32, 44, 56)


def convolutions(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The network's convolutions from input to output (option A shortcuts have none)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def watch(name: str, data: Digits, steps: int, batch_size: int, lr: float, seed: int) -> dict:
    """Train `name` on the digits; the weight-gradient norm of every convolution at every step."""
    torch.manual_seed(seed)
    model = create_model(name, num_classes=10, in_channels=1)
    layers = convolutions(model)
    norms: list[list[float]] = []
    losses = train_steps(model, data, steps, batch_size, lr, seed, after_backward=lambda step:
                         norms.append([float(conv.weight.grad.norm()) for _, conv in layers]))
    return {"model": name, "layers": [n for n, _ in layers], "gradient_norms": norms,
            "losses": losses, "test_accuracy": accuracy(model, data.test_images, data.test_labels)}


def stage_summary(run: dict) -> dict:
    """Medians over the steps of the mean gradient norm of the first and the last third of
    the convolutions (the 32x32 stage with the stem, the 8x8 stage with its neighbours)."""
    norms = np.asarray(run["gradient_norms"], dtype=np.float64)  # steps x layers
    third = max(1, norms.shape[1] // 3)
    early, late = norms[:, :third].mean(1), norms[:, -third:].mean(1)
    return {"early_median": float(np.median(early)), "late_median": float(np.median(late)),
            "early_at_step0": float(early[0]), "late_at_step0": float(late[0]),
            "final_loss": run["losses"][-1]}


def explain_depth(depth="20", steps="100", batch_size="32", lr="0.1", seed="0",
                  out=None) -> dict:
    depth = count(depth, "--depth", 0, 10**6)
    if depth not in DEPTHS:
        raise UserError(f"--depth must be one of {', '.join(map(str, DEPTHS))} (6n + 2 layers, "
                        f"as in He et al.), not {depth}.")
    steps = count(steps, "--steps", 1, 100_000)
    batch_size = count(batch_size, "--batch-size", 2, 4096)
    lr, seed = rate(lr), count(seed, "--seed", 0, 2**32 - 1)
    check_name(out)
    data = digits_tensors()
    with one_thread():
        runs = [watch(f"{kind}{depth}", data, steps, batch_size, lr, seed)
                for kind in ("plain", "resnet")]
    for run in runs:
        run.update(stage_summary(run))
    plain, residual = runs
    result = {"depth": depth, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "dataset": "digits", "networks": runs,
              "early_gradient_ratio": plain["early_median"] / residual["early_median"],
              "early_gradient_ratio_at_step0": plain["early_at_step0"] / residual["early_at_step0"],
              "accuracy_gap": residual["test_accuracy"] - plain["test_accuracy"]}
    if out is not None:
        from .claims_pictures import save_gradient_norms
        result["picture"] = save_gradient_norms(runs, out, title=_title(result))
    return result


def _title(result: dict) -> str:
    return (f"plain{result['depth']} vs resnet{result['depth']} on digits: {result['steps']} SGD "
            f"steps of {result['batch_size']}, lr {result['lr']:g}, seed {result['seed']}")


def format_depth(result: dict) -> str:
    plain, residual = result["networks"]
    rows = [("", plain["model"], residual["model"]),
            ("gradient norm, first third of layers, median over steps",
             f"{plain['early_median']:.3g}", f"{residual['early_median']:.3g}"),
            ("gradient norm, last third of layers, median over steps",
             f"{plain['late_median']:.3g}", f"{residual['late_median']:.3g}"),
            ("gradient norm, first third of layers, step 0",
             f"{plain['early_at_step0']:.3g}", f"{residual['early_at_step0']:.3g}"),
            ("training loss at the last step", f"{plain['final_loss']:.3f}",
             f"{residual['final_loss']:.3f}"),
            ("test accuracy", f"{plain['test_accuracy']:.1%}", f"{residual['test_accuracy']:.1%}")]
    width = max(len(r[0]) for r in rows)
    lines = [_title(result), ""] + [f"{a.ljust(width)}  {b:>10}  {c:>10}" for a, b, c in rows]
    ratio = result["early_gradient_ratio"]
    lines += ["", f"Early layers of the plain network get {ratio:.3g} times the residual one's "
              f"gradient over the run (median); at step 0, "
              f"{result['early_gradient_ratio_at_step0']:.3g} times."]
    if "picture" in result:
        lines.append(f"picture: {result['picture']}")
    return "\n".join(lines)
