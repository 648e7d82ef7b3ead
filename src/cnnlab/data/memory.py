"""The fast path: a whole data set as one uint8 tensor on the training device.

Batches are slices of that tensor; augmentation and normalisation run on the whole batch
at once (augment.py). For small images this replaces thousands of per-image PIL calls in
DataLoader workers per epoch with a handful of tensor operations.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .augment import Augment
from .transforms import Preprocess

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TensorBatches:
    """Iterable of (inputs, labels) batches, reshuffled every pass when `shuffle` is on.

    `transform(batch, generator)`, if given, turns each stored batch into model input
    (for example uint8 -> augmented, normalised float).
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu",
                 transform: BatchTransform | None = None):
        self.inputs = inputs.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        # Shuffling draws on the CPU (cheap, portable state); augmentation on the device,
        # so random masks and offsets are made where the images are.
        self.generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=self.inputs.device).manual_seed(seed + 1)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            inputs = self.inputs[index]
            if self.transform is not None:
                inputs = self.transform(inputs, self.augment_generator)
            yield inputs, self.labels[index]


def batch_transform(preprocess: Preprocess, augment: Augment | None = None) -> BatchTransform:
    """uint8 batch already at the model's size -> (augmented) normalised float batch."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if augment is not None:
            images = augment.batch(images, generator)
        inputs = preprocess.normalise(images)
        return augment.cutout_batch(inputs, generator) if augment is not None else inputs
    return transform
