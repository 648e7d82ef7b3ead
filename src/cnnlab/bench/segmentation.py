"""The segmentation contenders of `cnnlab bench --task segment` (task_speed.py says how they
are timed): the same U-Net (depth 3, width 16, 4 classes: background and three shapes) with
Adam, batch 32, on the same 32x32 shapes with their masks, flipped and shifted (up to 4 px,
reflection) together, per-pixel cross-entropy ignoring 255, in float32.
- references: torchvision's references/segmentation: a Dataset yielding an image and its
  tv_tensors.Mask through transforms v2 (RandomHorizontalFlip, RandomCrop with reflect
  padding), normalised per image, batched by a DataLoader;
- cnnlab: the engine with the segment task on in-memory batches, the mask riding along with
  the image through the whole-batch flip and shift, the confusion matrix summed on the device.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..data.augment import preset
from ..data.memory import TensorBatches, batch_transform
from ..data.shapes import generate_shapes
from ..data.transforms import Preprocess, channel_stats
from ..engine.loop import train_one_epoch
from ..models import create_model
from ..tasks.segment import IGNORE, Segment
from .task_speed import TaskSettings, best_rate, reference_rates, task_result

BATCH, CLASSES = 32, 4
TITLE = ("unet (depth 3, width 16), 32x32x3 shapes masks, flip + shift, batch 32, float32: "
         "training images per second")


class ReferenceDataset(Dataset):
    """An image and its mask as tv_tensors, transformed together (torchvision's references)."""

    def __init__(self, images, masks, mean, std):
        self.images, self.masks = images, masks
        self.transform = v2.Compose([
            v2.RandomHorizontalFlip(), v2.RandomCrop(32, padding=4, padding_mode="reflect"),
            v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(mean, std)])

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, index):
        image, mask = self.transform(tv_tensors.Image(self.images[index]),
                                     tv_tensors.Mask(self.masks[index]))
        return image, mask.long()


def reference_epoch(model, loader, optimizer) -> None:
    model.train()
    for images, masks in loader:
        loss = nn.functional.cross_entropy(model(images), masks, ignore_index=IGNORE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the references' metric logger reads it every step


def _fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("unet", num_classes=CLASSES)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def bench_segmentation(settings: TaskSettings) -> dict:
    data = generate_shapes(settings.images, 32, seed=0)
    mean, std = channel_stats(data.images)
    masks = data.class_masks
    baseline = reference_rates(settings, lambda workers: DataLoader(
        ReferenceDataset(data.images, masks, mean, std), batch_size=BATCH, shuffle=True,
        num_workers=workers, persistent_workers=workers > 0), _fresh, reference_epoch)
    augment = preset("flip-crop")
    batches = TensorBatches(data.images, masks, BATCH, shuffle=True, augment=augment,
                            transform=batch_transform(Preprocess(3, (32, 32), mean, std), augment))
    model, optimizer = _fresh()
    ours = best_rate(lambda: train_one_epoch(model, batches, Segment(), optimizer),
                     settings.epochs, settings.images)
    return task_result("segment", TITLE, settings, baseline, ours)
