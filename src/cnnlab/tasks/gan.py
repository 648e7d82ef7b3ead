"""Generative adversarial networks (Goodfellow et al. 2014) as DCGAN trains them (Radford et
al. 2016; models/dcgan.py): two networks, two updates per step.

    discriminator:  maximise log D(x) + log(1 - D(G(z)))   real images 1, generated ones 0
    generator:      maximise log D(G(z))                   the 'non-saturating' loss: strong
                                                           gradients while D still wins easily

both as binary cross-entropy on logits, with Adam (lr 2e-4, beta1 0.5: the `dcgan` recipe,
config/recipes.py). The training is not the lectures' loop, so the task brings its own `fit`
(engine/task.py); the session calls it with the same checkpoint, progress and metrics hooks.

Exact resume needs no extra machinery: both networks and the fixed noise are one module
(one state dict), and the optimiser is one Adam over both networks' parameters. Each of the
two updates has gradients for one network only (the generated batch is detached for D; D's
parameters stop asking for gradients during G's update), and Adam skips a parameter without
a gradient, its moments and step count untouched: two optimisers in all but name, with one
state dict for the checkpoint (tests/test_gan.py checks it against two Adams, bit for bit).

Quality is measured on every validation pass (frechet.py): the Fréchet distance between real
and generated images in the features of a classifier trained on the same data (the judge:
LeNet-5 with ReLU, trained for seconds at the start of the run (on its own random seed, so
the GAN trains the same whether it is trained or found) and kept in RUN/judge/,
so resume and `cnnlab evaluate` reuse it), and the share of generated images it recognises.
Every epoch draws the same fixed noise into RUN/samples/epoch_NNN.png; at the end the
sequence becomes RUN/samples/samples.gif.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..accel.precision import FP32
from ..data.transforms import Preprocess
from ..engine.loop import CHECK_EVERY, EpochTally, evaluate, optimizer_step
from ..engine.task import Headline
from ..errors import UserError
from .frechet import Judge, JudgeTally
from .gan_judge import judge_for
from .gan_samples import save_animation, save_samples

SIDES = (8, 16, 32, 64)                 # sides cnnlab chooses from the data (image_size=128 by hand)


def side_for(image_size) -> int:
    """The square side cnnlab trains a DCGAN at: the power of two at or above the images'
    longer side, between 8 and 64 (the paper's size): digits 8, MNIST 28 -> 32, shapes 64."""
    if image_size is None:
        raise UserError("none of the data set's images could be read; a GAN needs images.")
    longest = max(image_size)
    return next((s for s in SIDES if s >= longest), SIDES[-1])


def data_channels(split) -> int:
    """1 for grey images, else 3 (colour): a generator makes what the data holds."""
    if hasattr(split, "images"):
        return 1 if split.images.shape[1] == 1 else 3
    for path in split.files[:32]:
        try:
            with Image.open(path) as image:
                return 1 if image.mode in ("1", "L", "I", "I;16", "F") else 3
        except (OSError, ValueError):
            continue
    return 3


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


@dataclass
class GanEvaluation:
    d_loss: float         # discriminator's cross-entropy on real (1) and generated (0) images
    g_loss: float         # the generator's non-saturating loss
    d_real: float         # mean D(x): its probability that a real image is real
    d_fake: float         # mean D(G(z))
    scores: dict = field(default_factory=dict)  # frechet.JudgeTally.scores()

    def metrics(self) -> dict[str, float]:
        return {"loss": self.d_loss + self.g_loss, "d_loss": self.d_loss, "g_loss": self.g_loss,
                "d_real": self.d_real, "d_fake": self.d_fake,
                **{k: v for k, v in self.scores.items() if k != "predicted_classes"}}


class GanTally:
    """An evaluation pass: the discriminator's losses, and the judge's scores when there is
    a judge."""

    def __init__(self, judge: Judge | None, classes: int):
        self.judged = JudgeTally(judge, classes) if judge is not None else None
        self.sums, self.count, self.fakes = torch.zeros(4, dtype=torch.float64), 0, []

    def add(self, inputs: torch.Tensor, outputs, targets) -> None:
        real, fake = outputs.real_logits.float(), outputs.fake_logits.float()
        n = len(real)
        self.sums += torch.stack([(bce(real, True) + bce(fake, False)) * n, bce(fake, True) * n,
                                  torch.sigmoid(real).sum(), torch.sigmoid(fake).sum()]).cpu().double()
        self.count += n
        if self.judged is not None:
            self.judged.add(inputs.to(outputs.fake.device), outputs.fake.float())

    def result(self) -> GanEvaluation:
        d_loss, g_loss, d_real, d_fake = (self.sums / max(self.count, 1)).tolist()
        return GanEvaluation(d_loss, g_loss, d_real, d_fake,
                             self.judged.scores() if self.judged is not None else {})


class Gan:
    name = "gan"
    headline = Headline("frechet_distance", "FD", "{:.2f}")

    def __init__(self, judge: Judge | None = None, classes: int = 10):
        self.judge, self.classes = judge, classes
        self.run_dir: Path | None = None  # where samples and the judge go (attach)
        self.main = True

    @classmethod
    def from_config(cls, config) -> "Gan":
        if config.pretrained is not None:
            raise UserError("--task gan trains its generator and discriminator from scratch; "
                            "drop --pretrained.")
        if config.ema or config.tta != "none":
            raise UserError("--task gan evaluates the generator as trained; drop --ema and --tta.")
        return cls()

    def attach(self, run_dir: Path, main: bool = True) -> None:
        """The run folder that the samples and the judge are written to (by `main` only)."""
        self.run_dir, self.main = Path(run_dir), main

    # What prepare() asks of the task before the model is built (training/prepare.py).
    def targets(self, splits):
        """The images with their class labels, which only the judge learns from."""
        if getattr(splits.train, "targets", None) is not None:
            raise UserError(f"data set {splits.name} holds boxes; the GAN's judge learns one "
                            "class per image, e.g. --dataset digits, mnist or shapes.")
        if len(splits.classes) < 2:
            raise UserError(f"data set {splits.name} has {len(splits.classes)} class; the "
                            "classifier that judges a GAN's images needs at least two.")
        return splits

    def model_options(self, info, splits, image_size) -> dict:
        """The square side the generator makes, from the images' size (side_for)."""
        return {"image_size": side_for(image_size)}

    def plan_input(self, info, splits, image_size, kwargs) -> tuple[tuple[int, int, int], dict]:
        """(C, H, W): the data's channels at the generator's side, whatever the data's own
        shape (other sides are resized to it)."""
        side = kwargs.get("image_size", side_for(image_size))
        return (data_channels(splits.train), side, side), dict(kwargs)

    def preprocess(self, channels: int, size) -> Preprocess:
        """Pixels to [-1, 1] (mean and std 0.5), the range of the generator's tanh."""
        return Preprocess(channels, tuple(size), (0.5,) * channels, (0.5,) * channels)

    # The engine's interface (engine/task.py); `fit` below trains, these describe.
    def loss(self, outputs, targets):
        """(the discriminator's loss, the outputs): the objective one step of `fit` starts
        from; the generator's update follows it there."""
        return bce(outputs.real_logits, True) + bce(outputs.fake_logits, False), outputs

    def batch_sums(self, outputs, targets) -> dict[str, torch.Tensor]:
        return {"d_real": torch.sigmoid(outputs.real_logits.detach().float()).sum(),
                "d_fake": torch.sigmoid(outputs.fake_logits.detach().float()).sum()}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        return {name: value / max(seen, 1) for name, value in sums.items()}

    def accumulator(self) -> GanTally:
        return GanTally(self.judge, self.classes)

    def fit(self, model: nn.Module, train_batches, val_batches, *, epochs: int, task=None,
            optimizer, scheduler=None, scheduler_per_batch: bool = False, start_epoch: int = 1,
            tally: EpochTally | None = None, clip_grad: float | None = None, reduce=None,
            on_epoch_end=None, on_step=None, precision=FP32, eval_model=None) -> list[dict]:
        """engine.fit's contract with the GAN's step; see engine/loop.py for each argument."""
        if isinstance(model, nn.parallel.DistributedDataParallel):
            raise UserError("--task gan trains in one process; run it without torchrun.")
        device = model.fixed_noise.device
        self.classes = model.num_classes
        if self.judge is None:
            self.judge = judge_for(self.run_dir, model, train_batches, val_batches, self.main)
        history = []
        for epoch in range(start_epoch, start_epoch + epochs):
            step = None if on_step is None else (lambda t, e=epoch: on_step(e, t))
            epoch_tally = tally if epoch == start_epoch and tally is not None else EpochTally.new(
                device)
            metrics = {"epoch": epoch, **gan_epoch(
                model, train_batches, self, optimizer, scheduler if scheduler_per_batch else None,
                step, clip_grad=clip_grad, tally=epoch_tally, epoch=epoch, precision=precision)}
            val = evaluate(model if eval_model is None else eval_model, val_batches, self,
                           precision=precision)
            metrics.update({f"val_{k}": v for k, v in val.metrics().items()})
            if scheduler is not None and not scheduler_per_batch:
                scheduler.step()
            if self.main and self.run_dir is not None:  # before the checkpoint that ends the epoch
                save_samples(model, self.run_dir, epoch)
            history.append(metrics)
            if on_epoch_end is not None:
                on_epoch_end(metrics)
        if self.main and self.run_dir is not None:
            save_animation(self.run_dir)
        return history


def gan_step(model: nn.Module, real: torch.Tensor, optimizer, precision=FP32,
             clip_grad: float | None = None) -> dict[str, torch.Tensor]:
    """One DCGAN step: the discriminator on a real and a generated batch, then the generator
    against the updated discriminator. Returns the step's losses and D's outputs (device
    tensors, no host sync)."""
    generator, discriminator = model.generator, model.discriminator
    with precision.autocast():
        fake = generator(model.noise(len(real)))
        real_logits = discriminator(real)
        fake_logits = discriminator(fake.detach())  # no gradient into the generator here
        d_loss = bce(real_logits, True) + bce(fake_logits, False)
    optimizer_step(optimizer, d_loss, discriminator, precision, clip_grad)
    discriminator.requires_grad_(False)  # the generator's step moves the generator only
    try:
        with precision.autocast():
            g_loss = bce(discriminator(fake), True)  # non-saturating: -log D(G(z))
        optimizer_step(optimizer, g_loss, generator, precision, clip_grad)
    finally:
        discriminator.requires_grad_(True)
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}


def gan_epoch(model: nn.Module, batches, task: Gan, optimizer, scheduler=None, on_step=None, *,
              clip_grad=None, tally: EpochTally | None = None, epoch="?", precision=FP32) -> dict:
    """engine.train_one_epoch with the GAN's step: the tally's loss is D's plus G's."""
    device = model.fixed_noise.device
    model.train()
    tally = tally or EpochTally.new(device)
    if tally.lr is None:
        tally.lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter() - tally.seconds
    for inputs, _ in batches:
        real = inputs.to(device, non_blocking=True)
        found = gan_step(model, real, optimizer, precision, clip_grad)
        if scheduler is not None:
            scheduler.step()
        n = len(real)
        tally.add(found["d_loss"] + found["g_loss"], {k: v * n for k, v in found.items()}, n)
        tally.seconds = time.perf_counter() - start
        if tally.steps % CHECK_EVERY == 0:
            tally.check(epoch)
        if on_step is not None:
            on_step(tally)
    tally.seconds = time.perf_counter() - start
    tally.check(epoch)
    return tally.metrics(task) | {"lr": tally.lr}
