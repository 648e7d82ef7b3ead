"""Where images come from. Each source returns every image as uint8 N x C x H x W plus labels.

Keeping the raw uint8 pixels (not floats) is what lets a whole data set sit in memory and be
resized and normalised later for whichever model consumes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class LabelledImages:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    classes: list[str]


def digits() -> LabelledImages:
    """scikit-learn's 1,797 8x8 handwritten digits (UCI), shipped with the package: no download.

    Pixels count ink on a 0-16 scale; scaled to 0-255 they read as white digits on black,
    the same polarity as MNIST.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    return LabelledImages(torch.from_numpy(pixels).unsqueeze(1),
                          torch.from_numpy(bunch.target).long(),
                          [str(name) for name in bunch.target_names])


def lfw_faces() -> LabelledImages:
    """The 100 faces and 100 non-faces (25x25 grey) from Labeled Faces in the Wild that
    scikit-image ships for its face-detection example: a real two-class set, offline."""
    from skimage.data import lfw_subset

    pixels = np.rint(np.clip(lfw_subset(), 0, 1) * 255).astype(np.uint8)
    labels = np.repeat([0, 1], [100, 100])  # the first 100 are faces
    return LabelledImages(torch.from_numpy(pixels).unsqueeze(1), torch.from_numpy(labels).long(),
                          ["face", "non-face"])
