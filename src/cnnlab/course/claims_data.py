"""Data for the claims about moving objects: scikit-learn's 8x8 digits placed on a larger black
canvas, centred or moved, so the same digit can be shown to a network at another position.

004's car that moves from the bottom right to the top left, with digits: offline, in memory,
and the same images every time (a seed picks the positions and the split).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

DIGIT = 8  # scikit-learn's digits are 8x8


@dataclass
class PlacedDigits:
    """Digits (float 0..1, N x 8 x 8) and labels, split once; `place` puts them on the canvas."""

    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    canvas: int

    @property
    def centre(self) -> int:
        return (self.canvas - DIGIT) // 2

    @property
    def room(self) -> int:
        return room(self.canvas)

    def place(self, digits: torch.Tensor, offsets) -> torch.Tensor:
        """N x 1 x canvas x canvas images, digit i with its top-left corner at the centre plus
        offsets[i] (dy, dx)."""
        images = digits.new_zeros(len(digits), 1, self.canvas, self.canvas)
        for i, (dy, dx) in enumerate(torch.as_tensor(offsets).tolist()):
            y, x = self.centre + dy, self.centre + dx
            images[i, 0, y:y + DIGIT, x:x + DIGIT] = digits[i]
        return images

    def jittered(self, digits: torch.Tensor, largest: int, seed: int) -> torch.Tensor:
        """Each digit moved by a random (dy, dx), each up to `largest` pixels either way."""
        gen = torch.Generator().manual_seed(seed)
        return self.place(digits, torch.randint(-largest, largest + 1, (len(digits), 2), generator=gen))

    def shifted(self, digits: torch.Tensor, distance: int, seed: int) -> torch.Tensor:
        """Each digit moved exactly `distance` pixels from the centre, in one of the eight
        compass directions at random (diagonals move `distance` along both axes)."""
        directions = torch.tensor([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
        gen = torch.Generator().manual_seed(seed)
        return self.place(digits, directions[torch.randint(0, 8, (len(digits),), generator=gen)] * distance)


def room(canvas: int) -> int:
    """How far a digit can move from the centre and stay whole on a `canvas`-pixel side."""
    return canvas - DIGIT - (canvas - DIGIT) // 2


def placed_digits(canvas: int = 24, seed: int = 0, test_share: float = 0.25) -> PlacedDigits:
    """The 1,797 digits split into training and test sets (stratified by nothing but a seeded
    shuffle; every class has well over a hundred), ready to place on a `canvas`-pixel side."""
    if canvas < DIGIT:
        raise UserError(f"the canvas must be at least {DIGIT} pixels, the digits' own size.")
    from sklearn.datasets import load_digits
    bunch = load_digits()
    digits = torch.from_numpy((bunch.images / 16.0).astype(np.float32))
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    cut = int(len(digits) * (1 - test_share))
    return PlacedDigits(digits[order[:cut]], labels[order[:cut]], digits[order[cut:]],
                        labels[order[cut:]], canvas)
