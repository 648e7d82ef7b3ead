"""Batches for detection: images in memory, and per image a dict of boxes, labels (and masks).

A batch is (float images N x C x H x W in [0, 1], a list of N target dicts): the detectors
normalise inside, and an image's objects vary in number, so targets cannot be one tensor.
Augmentation (box_augment.py, transforms v2 on tv_tensors) runs per image, seeded by the
seed, the pass and the image's index, so a pass resumed part-way sees exactly the batches and
the augmentations it would have seen: `state_dict` holds where the pass began and how far it
got, as TensorBatches' does.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Augmentation = Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict]]


class BoxBatches:
    def __init__(self, images: torch.Tensor, targets: list[dict], batch_size: int,
                 shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu",
                 augment: Augmentation | None = None, rank: int = 0, world: int = 1):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images, self.targets = images, targets
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.device = torch.device(device)
        self.augment = augment
        self.rank, self.world = rank, world
        self.generator = torch.Generator().manual_seed(seed)
        self.position = 0   # batches handed out in the current pass
        self.passes = 0     # passes begun, which seeds each pass's augmentation
        self.limit = 0      # at most this many batches a pass (--limit-batches; 0: all)
        self._pass_start = self.generator.get_state()
        self._resume_at = 0

    def _share(self) -> int:
        return len(self.images) // self.world if self.world > 1 else len(self.images)

    def __len__(self) -> int:
        full = math.ceil(self._share() / self.batch_size)
        return min(full, self.limit) if self.limit else full

    def _example(self, index: int, pass_number: int) -> tuple[torch.Tensor, dict]:
        image, target = self.images[index], self.targets[index]
        if self.augment is not None:
            # v2 transforms draw from torch's global generator: give it a seed of its own
            # for this image in this pass, and leave the caller's state as it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed((self.seed * 1_000_003 + pass_number) * 1_000_033 + index)
                image, target = self.augment(image, target)
        return image, target

    def __iter__(self):
        n = len(self.images)
        self._pass_start = self.generator.get_state()
        if self._resume_at == 0:
            self.passes += 1
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world > 1:  # equal shares, so every process takes the same number of steps
            order = order[self.rank::self.world][:self._share()]
        first, self._resume_at = self._resume_at, 0
        end = len(self) * self.batch_size
        for self.position, start in enumerate(range(first * self.batch_size, min(len(order), end),
                                                     self.batch_size), start=first + 1):
            pairs = [self._example(int(i), self.passes) for i in order[start:start + self.batch_size]]
            images = torch.stack([image for image, _ in pairs]).to(self.device, non_blocking=True)
            targets = [{k: v.to(self.device) for k, v in target.items()} for _, target in pairs]
            yield images.float().div_(255), targets
        self.position = 0

    def state_dict(self) -> dict:
        pass_start = self._pass_start if self.position else self.generator.get_state()
        return {"pass_start": pass_start, "position": self.position, "passes": self.passes}

    def load_state_dict(self, state: dict) -> None:
        """The next pass replays the interrupted one from its start, skipping what was done."""
        self.generator.set_state(state["pass_start"])
        self._resume_at, self.passes = int(state["position"]), int(state["passes"])
