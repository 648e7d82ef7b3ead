"""DCGAN (Radford, Metz & Chintala 2016): a generator of transposed convolutions against a
discriminator of strided convolutions, trained as a two-player game.

    generator      z (100 numbers) -> 4x4 -> 8x8 -> ... -> image   ConvTranspose2d, BN, ReLU; tanh out
    discriminator  image -> ... -> 4x4 -> one realness logit        Conv2d stride 2, BN, LeakyReLU(0.2)

The paper's guidelines, each visible below: no pooling (strided convolutions learn their own
down- and upsampling), batch norm everywhere except the generator's output layer and the
discriminator's input layer, ReLU in the generator with tanh at its output, LeakyReLU with
slope 0.2 in the discriminator, and weights drawn from N(0, 0.02) (batch-norm scales from
N(1, 0.02)). The width halves at every upsampling step: the paper's 64x64 generator runs
1024 -> 512 -> 256 -> 128 channels; here 8 x `width` at 4x4 (512 for the default width 64),
so that a smaller image has fewer steps of the same ladder.

Both networks live in one module, so that one state dict (and one optimiser over its
parameters, tasks/gan.py) is everything a checkpoint needs; the fixed noise that draws the
sample grid of every epoch is a buffer beside them, so it is saved and restored too.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..errors import UserError
from .registry import register_model

NOISE = 100          # the paper's z: 100 numbers from N(0, 1)
SAMPLES = 64         # images in the fixed-noise sample grid (8 x 8)
EVAL_SEED = 20160107  # the noise every evaluation pass draws, the same each time
SIZES = (8, 16, 32, 64, 128)  # square sides, 4 x a power of two


class GANOutputs(NamedTuple):
    """What the model returns for a batch of real images: as many generated ones, and the
    discriminator's logits for both (high: 'real')."""
    fake: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


@torch.fx.wrap  # one node when torch.fx traces the model (look/featuremaps.py): len() is no node
def draw_noise(like: torch.Tensor, size: int, seed: int | None = None) -> torch.Tensor:
    """len(like) noise vectors on like's device: from `seed` (drawn on the CPU, the same on
    every device), or with None from the global generator."""
    if seed is None:
        return torch.randn(like.shape[0], size, 1, 1, device=like.device)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape[0], size, 1, 1, generator=generator).to(like.device)


def steps_for(image_size: int) -> int:
    """Upsampling steps from the 4x4 start to `image_size`."""
    if image_size not in SIZES:
        raise UserError(f"DCGAN makes square images of side {', '.join(map(str, SIZES))}; "
                        f"image_size={image_size} is none of them.")
    return int(math.log2(image_size // 4))


def up(in_channels: int, out_channels: int) -> list[nn.Module]:
    """One generator step: twice the side (kernel 4, stride 2, padding 1), half the channels."""
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


def down(in_channels: int, out_channels: int, norm: bool = True) -> list[nn.Module]:
    """One discriminator step: half the side, twice the channels."""
    return [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False),
            *([nn.BatchNorm2d(out_channels)] if norm else []), nn.LeakyReLU(0.2, inplace=True)]


class Generator(nn.Module):
    def __init__(self, image_size: int = 64, out_channels: int = 3, noise: int = NOISE,
                 width: int = 64):
        super().__init__()
        widths = [width * 8 // 2 ** i for i in range(steps_for(image_size))]
        layers = [nn.ConvTranspose2d(noise, widths[0], 4, 1, 0, bias=False),  # 1x1 -> 4x4
                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for a, b in zip(widths, widths[1:]):
            layers += up(a, b)
        # the output layer: no batch norm (the paper: it made samples oscillate), tanh
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, image_size: int = 64, in_channels: int = 3, width: int = 64):
        super().__init__()
        widths = [width * 8 // 2 ** i for i in range(steps_for(image_size))][::-1]
        layers = down(in_channels, widths[0], norm=False)  # no batch norm on the input layer
        for a, b in zip(widths, widths[1:]):
            layers += down(a, b)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False),  # 4x4 -> 1x1
                                  nn.Flatten(0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def paper_init(module: nn.Module) -> None:
    """Radford et al.: 'All weights were initialized from a zero-centered Normal
    distribution with standard deviation 0.02'; batch-norm scales around 1, shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(nn.Module):
    """Generator and discriminator for `in_channels` x `image_size` x `image_size` images.

    `num_classes` is the data's number of classes, kept for the classifier that judges the
    samples (tasks/gan.py): the GAN itself is unconditional. `seed` draws the fixed noise.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 64,
                 noise: int = NOISE, width: int = 64, seed: int = 0):
        super().__init__()
        if width < 1 or noise < 1:
            raise UserError(f"DCGAN's width and noise must be positive, not {width} and {noise}.")
        self.num_classes, self.image_size, self.noise_size = num_classes, image_size, noise
        self.generator = Generator(image_size, in_channels, noise, width)
        self.discriminator = Discriminator(image_size, in_channels, width)
        self.apply(paper_init)
        # Drawn on the CPU from its own seed: the same grid noise on every device, and
        # untouched by the global generator (or by a model built on the meta device).
        self.register_buffer("fixed_noise", torch.randn(
            SAMPLES, noise, 1, 1, generator=torch.Generator().manual_seed(seed), device="cpu"))
        self._eval_batches = 0

    def noise(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`count` noise vectors on the model's device (from `generator`, drawn on the CPU,
        or else from the global generator on the device)."""
        device = self.fixed_noise.device
        if generator is not None:
            return torch.randn(count, self.noise_size, 1, 1, generator=generator).to(device)
        return torch.randn(count, self.noise_size, 1, 1, device=device)

    def train(self, mode: bool = True) -> "DCGAN":
        # Every evaluation pass starts with model.eval(): from here it draws the same noise
        # again, so a validation or test figure is repeatable and leaves the global
        # generator (and with it an exact resume) alone.
        if not mode:
            self._eval_batches = 0
        return super().train(mode)

    def forward(self, images: torch.Tensor) -> GANOutputs:
        """As many generated images as real ones given, and the discriminator's view of both.
        In evaluation mode the noise is the fixed evaluation sequence."""
        seed = None
        if not self.training:
            seed, self._eval_batches = EVAL_SEED + self._eval_batches, self._eval_batches + 1
        fake = self.generator(draw_noise(images, self.noise_size, seed))
        return GANOutputs(fake, self.discriminator(images), self.discriminator(fake))

    @torch.no_grad()
    def sample_grid_images(self) -> torch.Tensor:
        """The generator's images for the fixed noise, in [-1, 1], in evaluation mode."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(self.fixed_noise)
        finally:
            self.generator.train(was_training)

    # The shared model interface (models/base.py): the discriminator is the part that looks
    # at an image, so its last feature maps and its realness score stand in for a
    # classifier's; it has no classes to reset.
    features_path = "discriminator.features"  # what look/ shows of an image (feature maps)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator.features(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.discriminator.head(features)

    def reset_classifier(self, num_classes: int) -> None:
        raise UserError("a DCGAN has no classifier to replace: it is unconditional.")

    def classifier_names(self) -> list[str]:
        return ["discriminator.head"]


@register_model(family="dcgan", task="gan", input_size=(3, 64, 64), architecture=DCGAN,
                mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                paper="Radford, Metz & Chintala 2016, Unsupervised representation learning "
                      "with deep convolutional generative adversarial networks")
def dcgan(**kwargs):
    return DCGAN(**kwargs)
