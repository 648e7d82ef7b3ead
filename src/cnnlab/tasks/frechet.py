"""How good is a GAN's output? The Fréchet distance between real and generated images in the
feature space of a classifier of the same data, and the share of generated images that
classifier recognises with confidence.

    d^2 = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

is the Fréchet (2-Wasserstein) distance between two Gaussians with those means and
covariances, fitted to the features of real and of generated images (Heusel et al. 2017,
who named it FID with the features of an ImageNet Inception network). Here the features
are the penultimate layer of a small cnnlab classifier trained on the run's own data set
(the judge, tasks/gan.py), at the run's own image size, on a few hundred images: the numbers
compare epochs and runs of one data set with each other and are NOT comparable with
published FID values (other network, other features, other sample sizes; the estimate is
biased upwards for small samples).
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

CONFIDENT = 0.9  # a generated image is 'recognised' when the judge gives a class this much


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64 NumPy)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    with warnings.catch_warnings():
        # ReLU features that never fire make the covariances singular; sqrtm warns and
        # copes, and the check below handles what it cannot
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # nudge both away from singular, as the reference FID code does
            offset = np.eye(len(sigma1)) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)  # rounding leaves tiny imaginary parts
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean),
                     0.0))


class Moments:
    """Running sums for a mean and covariance, on the device, in float64."""

    def __init__(self):
        self.count, self.total, self.outer = 0, None, None

    def add(self, features: torch.Tensor) -> None:
        x = features.detach().double().flatten(1)
        self.total = x.sum(0) if self.total is None else self.total + x.sum(0)
        self.outer = x.T @ x if self.outer is None else self.outer + x.T @ x
        self.count += len(x)

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.count
        mean = self.total / n
        cov = (self.outer - n * torch.outer(mean, mean)) / max(n - 1, 1)
        return mean.cpu().numpy(), cov.cpu().numpy()


def distance(real: Moments, fake: Moments) -> float:
    return frechet_distance(*real.mean_cov(), *fake.mean_cov())


class Judge(nn.Module):
    """A cnnlab classifier behind a resize to its input size. `features` are the input of
    its class-score layer (the penultimate layer), caught by a hook, so any registered
    classifier can judge."""

    def __init__(self, classifier: nn.Module, size: tuple[int, int]):
        super().__init__()
        self.classifier, self.size = classifier, tuple(size)
        self._caught = None
        score_layer = classifier.get_submodule(classifier.classifier_names()[0])
        score_layer.register_forward_pre_hook(self._catch)

    def _catch(self, module, args) -> None:
        self._caught = args[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != self.size:
            images = F.interpolate(images.float(), size=self.size, mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.classifier(images)

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(images)
        return self._caught.flatten(1).float(), logits.float()


class JudgeTally:
    """Features of real and generated images, and how many generated ones the judge
    recognises, over one evaluation pass."""

    def __init__(self, judge: Judge, classes: int):
        self.judge, self.real, self.fake = judge, Moments(), Moments()
        self.recognised = self.real_recognised = 0
        self.predicted = torch.zeros(classes, dtype=torch.long)

    def add(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        features, logits = self.judge.features_and_logits(real)
        self.real.add(features)
        self.real_recognised += int((logits.softmax(1).amax(1) >= CONFIDENT).sum())
        features, logits = self.judge.features_and_logits(fake)
        self.fake.add(features)
        confidence, predicted = logits.softmax(1).max(1)
        self.recognised += int((confidence >= CONFIDENT).sum())
        self.predicted += torch.bincount(predicted.cpu(), minlength=len(self.predicted))

    def scores(self) -> dict:
        n = max(self.fake.count, 1)
        return {"frechet_distance": distance(self.real, self.fake),
                "recognised": self.recognised / n,
                "real_recognised": self.real_recognised / max(self.real.count, 1),
                "predicted_classes": (self.predicted.double() / n).tolist()}
