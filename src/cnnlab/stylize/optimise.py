"""The optimisation of neural style transfer: the pixels are the parameters.

Gatys et al. 2016 start from white noise; we start from the content image, as the PyTorch
tutorial does: the content loss then starts at 0, and the optimiser's steps go to pulling
in the style rather than to drawing the whole picture. L-BFGS is the paper's optimiser and
the tutorial's; Adam is there to compare. Before every evaluation the pixels are clamped to
[0, 1], the range the networks were trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError, unknown_name
from .extractors import Backbone
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .taps import FeatureTaps

# name -> (factory(pixels, steps), how many times to call its .step). L-BFGS runs its whole
# budget in one call: `steps` is then its evaluations of loss and gradient (one per
# iteration, no line search, as in the PyTorch tutorial); Adam takes `steps` updates.
OPTIMIZERS = {
    "lbfgs": (lambda p, steps: torch.optim.LBFGS([p], lr=1, max_iter=steps, max_eval=steps,
                                                  history_size=50), lambda steps: 1),
    "adam": (lambda p, steps: torch.optim.Adam([p], lr=0.02), lambda steps: steps),
}


@dataclass(frozen=True)
class Weights:
    """How much each loss counts in the total (both content and style losses are relative
    errors, so weights 1 and 100 mean: a style error 100 times as costly as a content one;
    the command's defaults are in cnnlab.stylize.DEFAULTS)."""
    content: float = 1.0
    style: float = 100.0
    tv: float = 0.0


@dataclass
class History:
    """The losses at each evaluation, in order; the last entry is the returned image's."""
    content: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)

    def add(self, content: float, style: float, tv: float) -> None:
        self.content.append(content)
        self.style.append(style)
        self.tv.append(tv)


def targets(taps: FeatureTaps, spec: Backbone, content: torch.Tensor, style: torch.Tensor):
    """The content image's features in the content layer, the style image's Gram matrices."""
    with torch.no_grad():
        content_target = taps(content)[spec.content]
        maps = taps(style)
        return content_target, [gram_matrix(maps[name]) for name in spec.style]


def losses(taps, spec, image, goal, weights: Weights) -> tuple[torch.Tensor, list[float]]:
    """The weighted total, and the three losses as numbers for the history."""
    maps = taps(image)
    content = content_loss(maps[spec.content], goal[0])
    style = style_loss([maps[name] for name in spec.style], goal[1])
    tv = total_variation(image)
    total = weights.content * content + weights.style * style + weights.tv * tv
    return total, [float(content.detach()), float(style.detach()), float(tv.detach())]


def stylize_pixels(taps: FeatureTaps, spec: Backbone, content: torch.Tensor,
                   style: torch.Tensor, steps: int, weights: Weights, optimizer: str = "lbfgs",
                   on_step: Callable[[int, float, float], None] | None = None):
    """The content image (1 x 3 x H x W, in [0, 1]) moved towards the style image's style;
    returns the image and the History of its losses."""
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, OPTIMIZERS)
    goal = targets(taps, spec, content, style)
    pixels = content.clone().requires_grad_(True)
    make, rounds = OPTIMIZERS[optimizer]
    opt, history = make(pixels, steps), History()

    def closure() -> torch.Tensor:
        with torch.no_grad():
            pixels.clamp_(0, 1)
        opt.zero_grad()
        total, numbers = losses(taps, spec, pixels, goal, weights)
        if not torch.isfinite(total):
            raise UserError("the loss became infinite or nan; lower --style-weight or "
                            "--tv-weight, or use --optimizer adam.")
        total.backward()
        history.add(*numbers)
        if on_step is not None:
            on_step(len(history.content), numbers[0], numbers[1])
        return total

    for _ in range(rounds(steps)):
        opt.step(closure)
    with torch.no_grad():  # the losses of the image we return (the last update is unseen)
        pixels.clamp_(0, 1)
        history.add(*losses(taps, spec, pixels, goal, weights)[1])
    return pixels.detach(), history
