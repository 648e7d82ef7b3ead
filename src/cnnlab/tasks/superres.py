"""Single-image super-resolution: a photograph `scale` times larger on each side, with the
detail that bicubic interpolation blurs away (SRCNN, Dong et al. 2014; ESPCN, Shi et al. 2016).

What the model learns from, as the papers make it: the original (high-resolution) image is
the target, and its bicubic downscaling by `scale` (antialiased, rounded to 8 bits) the input.
Both are the luminance Y of BT.601 (image_quality.py): the papers upscale Y with the network
and the colour with bicubic, since the eye sees detail in brightness. Pixels reach the model
on the 0-1 scale, unnormalised, so its output, the target and bicubic upscaling share one
scale (`preprocess`).

Training minimises the mean squared error (the papers' loss, and PSNR's own measure). Every
evaluation reports, beside the model's, what bicubic upscaling of the same input scores:

    psnr, ssim                  the model's output, rounded to 8 bits as a saved image would be
    bicubic_psnr, bicubic_ssim  bicubic upscaling of the same low-resolution input

on Y, with a border of `scale` pixels cropped (as the papers measure). PSNR is the split's as
one image (from the mean squared error over all its measured pixels: a flat tile that bicubic
reproduces exactly would make a per-tile average infinite); SSIM is the mean over images.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..data.catalog import Split
from ..data.transforms import Preprocess
from ..engine.task import Headline
from ..errors import UserError
from ..models.superres import SCALES, bicubic
from .image_quality import crop_border, luminance, psnr_of, quantised, squared_errors, ssims

MIN_SIDE = 4  # low-resolution pixels on a side: less and there is nothing to learn from


def downscaled(high: torch.Tensor, scale: int) -> torch.Tensor:
    """uint8 N x C x H x W (H, W multiples of `scale`) -> the low-resolution uint8 input:
    bicubic with antialiasing (as MATLAB's imresize, which the papers used, and PIL do)."""
    size = (high.shape[-2] // scale, high.shape[-1] // scale)
    small = F.interpolate(high.float(), size=size, mode="bicubic", antialias=True,
                          align_corners=False)
    return small.round().clamp(0, 255).to(torch.uint8)


def pairs(images: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-resolution Y, original Y) of uint8 images, cut to a multiple of `scale`."""
    height, width = (side - side % scale for side in images.shape[-2:])
    high = luminance(images[..., :height, :width]).contiguous()
    return downscaled(high, scale), high


@dataclass
class SuperResEvaluation:
    loss: float          # mean squared error on the 0-1 scale, before rounding
    psnr: float          # dB, on Y, border cropped
    ssim: float
    bicubic_psnr: float  # bicubic upscaling of the same inputs
    bicubic_ssim: float
    images: int

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "psnr": self.psnr, "ssim": self.ssim,
                "bicubic_psnr": self.bicubic_psnr, "bicubic_ssim": self.bicubic_ssim}


class Quality:
    """An evaluation pass: squared errors and SSIM of the model and of bicubic, summed on the
    device (no host sync per batch)."""

    def __init__(self, scale: int):
        self.scale = scale
        self.sums: dict[str, torch.Tensor] = {}
        self.images = self.pixels = self.values = 0  # images; measured Y pixels; all of them

    def measured(self, inputs, outputs, high):
        """(model, bicubic, original) on the 0-255 scale, borders cropped."""
        inputs = inputs.to(outputs.device).float()
        crop = lambda x: crop_border(x, self.scale)  # noqa: E731
        return (crop(quantised(outputs)), crop(quantised(bicubic(inputs, self.scale))),
                crop(high.float()))

    def add(self, inputs, outputs: torch.Tensor, high: torch.Tensor) -> None:
        ours, baseline, truth = self.measured(inputs, outputs, high)
        found = {"loss": F.mse_loss(outputs.float(), high.float() / 255, reduction="sum"),
                 "error": squared_errors(ours, truth).sum(),
                 "bicubic_error": squared_errors(baseline, truth).sum(),
                 "ssim": ssims(ours, truth).sum(), "bicubic_ssim": ssims(baseline, truth).sum()}
        for key, value in found.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.images += len(high)
        self.pixels += truth[0].numel() * len(high)
        self.values += high.numel()

    def result(self) -> SuperResEvaluation:
        sums = {k: float(v) for k, v in self.sums.items()}  # the one sync
        n = max(self.images, 1)
        return SuperResEvaluation(
            sums.get("loss", 0.0) / max(self.values, 1),
            psnr_of(sums.get("error", 0.0), self.pixels), sums.get("ssim", 0.0) / n,
            psnr_of(sums.get("bicubic_error", 0.0), self.pixels),
            sums.get("bicubic_ssim", 0.0) / n, self.images)


class SuperRes:
    """Mean squared error between the upscaled luminance and the original's; evaluation
    reports PSNR and SSIM beside bicubic upscaling's."""
    name = "superres"
    headline = Headline("psnr", "psnr", "{:.2f} dB")

    def __init__(self, scale: int = 2):
        if scale not in SCALES:
            raise UserError(f"--scale must be {', '.join(map(str, SCALES[:-1]))} or "
                            f"{SCALES[-1]}, not {scale!r}.")
        self.scale = scale

    @classmethod
    def from_config(cls, config) -> "SuperRes":
        # What would break the pairing of input and target, or the 0-1 scale, is refused here.
        if config.augment not in ("auto", "none"):
            raise UserError(f"--augment {config.augment} would move the input without its "
                            "target; super-resolution trains on random patches with --augment "
                            "none.")
        if config.pretrained is not None or config.weights is not None:
            raise UserError("the super-resolution models have no ImageNet weights; drop "
                            "--pretrained/--weights (--weights-file loads a run's own).")
        if config.tta != "none":
            raise UserError("--tta flip averages class scores; super-resolution evaluates "
                            "with --tta none.")
        if config.model_kwargs.get("scale", config.scale) != config.scale:
            raise UserError(f"give the scale with --scale, not scale= in --model-kwargs "
                            f"(--scale is {config.scale}).")
        return cls(config.scale)

    # What prepare() asks of the task before the model is built (training/prepare.py).
    def targets(self, splits):
        """The data set as (low-resolution Y, original Y) pairs: the originals become the
        targets, their bicubic downscaling the images."""
        parts = {}
        for name in ("train", "val", "test"):
            part = getattr(splits, name)
            if not isinstance(part, Split) or part.targets is not None:
                raise UserError(f"data set {splits.name} is not one of photographs in memory; "
                                "super-resolution learns from --dataset photos or photos:PATH.")
            if min(part.images.shape[-2:]) < MIN_SIDE * self.scale:
                raise UserError(f"the images of {splits.name} are too small to make "
                                f"{self.scale} times smaller; use --dataset photos.")
            low, high = pairs(part.images, self.scale)
            parts[name] = Split(low, high)
        return replace(splits, augment="none", mask_classes=None, **parts)

    def model_options(self, info, splits, image_size) -> dict:
        return {"scale": self.scale}

    def preprocess(self, channels: int, size) -> Preprocess:
        """Pixels on the 0-1 scale (mean 0, std 1): the model adds bicubic upscaling of its
        input to its output, and the metrics compare both with the original."""
        return Preprocess(channels, tuple(size), (0.0,) * channels, (1.0,) * channels)

    # The engine's interface (engine/task.py).
    def loss(self, outputs: torch.Tensor, high: torch.Tensor):
        return F.mse_loss(outputs.float(), high.float() / 255), outputs

    def batch_sums(self, outputs: torch.Tensor, high: torch.Tensor) -> dict[str, torch.Tensor]:
        ours = crop_border(quantised(outputs.detach()), self.scale)
        truth = crop_border(high.float(), self.scale)
        return {"error": (ours - truth).square().sum(),
                "pixels": torch.tensor(truth.numel(), device=truth.device)}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        return {"psnr": psnr_of(float(sums["error"]), int(sums["pixels"]))}

    def accumulator(self) -> Quality:
        return Quality(self.scale)
