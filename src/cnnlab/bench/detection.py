"""The detection contenders of `cnnlab bench --task detect` (task_speed.py says how they are
timed): the same FCOS (cnnlab's ResNet-18 with a 64-channel pyramid, min_size = max_size =
64, 3 shapes and the background) with Adam, batch 16, on the same 64x64 shapes-objects
scenes, flipped, scale-jittered and cropped with their boxes by the same transforms v2
(data/box_augment.py), in float32.
- references: torchvision's references/detection train loop: a Dataset yielding an image and
  its target dict, collate_fn=tuple(zip(*batch)), `model(images, targets)`, the summed losses;
- cnnlab: the engine with the detect task on BoxBatches (images in memory, the same
  per-image augmentation, seeded per image for exact resume), losses summed on the device.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.box_augment import BoxAugmenter, box_preset
from ..data.box_batches import BoxBatches
from ..data.scenes import generate_scenes
from ..engine.loop import train_one_epoch
from ..models import create_model
from ..tasks.detect import Detect
from .task_speed import TaskSettings, best_rate, reference_rates, task_result

BATCH, CLASSES = 16, 4
OPTIONS = dict(backbone="resnet18", min_size=64, max_size=64, fpn_channels=64)
TITLE = ("fcos (ResNet-18, 64-channel pyramid), 64x64 shapes-objects, flip + scale jitter + "
         "crop, batch 16, float32: training images per second")


class ReferenceDataset(Dataset):
    """An image (float in [0, 1]) and its boxes, transformed together per image."""

    def __init__(self, images, targets):
        self.images, self.targets = images, targets
        self.augment = BoxAugmenter(box_preset("flip-crop"))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image, target = self.augment(self.images[index], self.targets[index])
        return image.float() / 255, {k: target[k] for k in ("boxes", "labels")}


def _collate(batch):
    return tuple(zip(*batch))


def reference_epoch(model, loader, optimizer) -> None:
    model.train()
    for images, targets in loader:
        loss = sum(model(list(images), list(targets)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the references' metric logger reads it every step


def _fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("fcos", num_classes=CLASSES, **OPTIONS)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def bench_detection(settings: TaskSettings) -> dict:
    data = generate_scenes(settings.images, 64, seed=0)
    targets = [{k: t[k] for k in ("boxes", "labels")} for t in data.targets]
    baseline = reference_rates(settings, lambda workers: DataLoader(
        ReferenceDataset(data.images, targets), batch_size=BATCH, shuffle=True,
        num_workers=workers, persistent_workers=workers > 0, collate_fn=_collate),
        _fresh, reference_epoch)
    batches = BoxBatches(data.images, targets, BATCH, shuffle=True,
                         augment=BoxAugmenter(box_preset("flip-crop")))
    model, optimizer = _fresh()
    ours = best_rate(lambda: train_one_epoch(model, batches, Detect(), optimizer),
                     settings.epochs, settings.images)
    return task_result("detect", TITLE, settings, baseline, ours)
