"""The fast path: a whole data set as one uint8 tensor on the training device.

Batches are rows of that tensor; augmentation and normalisation run on the whole batch at
once (augment.py). For small images this replaces thousands of per-image PIL calls in
DataLoader workers per epoch with a handful of tensor operations.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .augment import Augment, AugmentedImages
from .transforms import Preprocess

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TensorBatches:
    """Iterable of (inputs, labels) batches, reshuffled every pass when `shuffle` is on.

    `augment` flips and translates each batch as it is taken (AugmentedImages); then
    `transform(batch, generator)`, if given, turns it into model input (for example uint8 ->
    normalised float with cutout). With `world` > 1 each process takes
    its own share (`rank`) of every shuffled pass. The position within a pass and both
    random generators are in `state_dict()`, so a run resumed mid-epoch sees exactly the
    batches, in the order and with the augmentations, it would have seen.
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu",
                 transform: BatchTransform | None = None, augment: Augment | None = None,
                 rank: int = 0, world: int = 1):
        # Masks (N x H x W, segmentation) ride along as one more uint8 channel, so a flip or
        # shift moves image and mask together, pixel for pixel.
        self.dense = labels.dim() == 3
        joined = torch.cat([inputs, labels[:, None].to(inputs.dtype)], 1) if self.dense else inputs
        self.inputs = AugmentedImages(joined.to(device), augment)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.rank, self.world = rank, world
        # Shuffling draws on the CPU (cheap, portable state) with the same seed on every
        # process, so the shares never overlap; augmentation draws on the device, per process.
        self.generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=self.inputs.device).manual_seed(
            seed + 1 + rank)
        self.position = 0          # batches handed out in the current pass
        self.limit = 0             # at most this many batches a pass (--limit-batches; 0: all)
        self._pass_start = self.generator.get_state()
        self._resume_at = 0

    def _share(self) -> int:
        return len(self.labels) // self.world if self.world > 1 else len(self.labels)

    def __len__(self) -> int:
        full = math.ceil(self._share() / self.batch_size)
        return min(full, self.limit) if self.limit else full

    def __iter__(self):
        n = len(self.labels)
        self._pass_start = self.generator.get_state()
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world > 1:  # equal shares, so every process takes the same number of steps
            order = order[self.rank::self.world][:self._share()]
        order = order.to(self.labels.device)
        first, self._resume_at = self._resume_at, 0
        # A limited pass ends like a full one (position back to 0), so a checkpoint taken
        # after it starts the next pass and a resumed run draws the same orders.
        end = len(self) * self.batch_size
        for self.position, start in enumerate(range(first * self.batch_size, min(len(order), end),
                                                     self.batch_size), start=first + 1):
            index = order[start:start + self.batch_size]
            inputs = self.inputs.take(index, self.augment_generator)
            labels = self.labels[index]
            if self.dense:
                inputs, labels = inputs[:, :-1], inputs[:, -1].to(labels.dtype)
            if self.transform is not None:
                inputs = self.transform(inputs, self.augment_generator)
            yield inputs, labels
        self.position = 0

    def state_dict(self) -> dict:
        """Where the current pass began, how far it got, and the augmenter's state now."""
        pass_start = self._pass_start if self.position else self.generator.get_state()
        return {"pass_start": pass_start, "position": self.position,
                "augment": self.augment_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """The next pass replays the interrupted one from its start, skipping what was done."""
        self.generator.set_state(state["pass_start"])
        self.augment_generator.set_state(state["augment"].to(torch.uint8).cpu())
        self._resume_at = int(state["position"])


def batch_transform(preprocess: Preprocess, augment: Augment | None = None) -> BatchTransform:
    """uint8 batch (already flipped and translated) -> normalised float batch, with cutout."""
    def transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        inputs = preprocess.normalise(images)
        return augment.cutout_batch(inputs, generator) if augment is not None else inputs
    return transform
