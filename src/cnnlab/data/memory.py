"""Batches from tensors already in memory, on the training device.

A small data set (digits: 1,797 images) fits on any device many times over; slicing one big
tensor beats a DataLoader's per-image indexing and collation by a wide margin.
"""
from __future__ import annotations

import math

import torch


class TensorBatches:
    """Iterable of (inputs, labels) batches; reshuffled every pass when `shuffle` is on."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu"):
        self.inputs = inputs.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        # The shuffling generator lives on the CPU: it is cheap, and its state is portable.
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.inputs[index], self.labels[index]
