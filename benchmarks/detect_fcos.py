"""Images per second training a detector on shapes-objects: torchvision's detection
references' way against cnnlab's engine.

    .venv/bin/python benchmarks/detect_fcos.py [--images 800] [--epochs 2]

Both train the same FCOS (cnnlab's ResNet-18 with a 64-channel pyramid, min_size = max_size
= 64, 4 classes with the background) with Adam, batch 16, on the same 64x64 scenes and their
boxes, flipped, scale-jittered and cropped by the same transforms v2 (data/box_augment.py),
in float32.
- baseline: as torchvision's references/detection train: a Dataset yielding an image and its
  target dict, a DataLoader batching them with collate_fn=tuple(zip(*batch)) (0 workers and
  one per core; the faster counts), `model(images, targets)`, the summed losses, and
  `loss.item()` every step for the log line, as their metric logger reads it;
- cnnlab: engine.train_one_epoch with the detect task on BoxBatches (images in memory, the
  same per-image augmentation seeded per image for exact resume), the losses summed on the
  device.
Each path runs one warm-up epoch, then `--epochs` timed epochs; the ratio is of the best
epoch of each. Writes benchmarks/results/detect_fcos.{json,md}.
"""
from __future__ import annotations

import argparse
import os

import torch
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.box_augment import BoxAugmenter, box_preset
from cnnlab.data.box_batches import BoxBatches
from cnnlab.data.scenes import generate_scenes
from cnnlab.engine.loop import train_one_epoch
from cnnlab.models import create_model
from cnnlab.tasks.detect import Detect
from segment_unet import best_rate, write_results

BATCH, CLASSES = 16, 4
OPTIONS = dict(backbone="resnet18", min_size=64, max_size=64, fpn_channels=64)


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


def reference_epoch(model, loader, optimizer) -> None:
    model.train()
    for images, targets in loader:
        losses = model(list(images), list(targets))
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the references' metric logger reads it every step


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("fcos", num_classes=CLASSES, **OPTIONS)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = generate_scenes(args.images, 64, seed=0)
    targets = [{k: t[k] for k in ("boxes", "labels")} for t in data.targets]

    baseline = {}
    for workers in sorted({0, os.cpu_count() or 1}):
        loader = DataLoader(ReferenceDataset(data.images, targets), batch_size=BATCH,
                            shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                            collate_fn=lambda batch: tuple(zip(*batch)))
        model, optimizer = fresh()
        baseline[workers] = best_rate(lambda: reference_epoch(model, loader, optimizer),
                                      args.epochs, args.images)

    batches = BoxBatches(data.images, targets, BATCH, shuffle=True,
                         augment=BoxAugmenter(box_preset("flip-crop")))
    model, optimizer = fresh()
    ours = best_rate(lambda: train_one_epoch(model, batches, Detect(), optimizer),
                     args.epochs, args.images)
    write_results("detect_fcos", "fcos (ResNet-18, 64-channel pyramid), 64x64 shapes-objects, "
                  "flip + scale jitter + crop, batch 16, float32: training images per second",
                  args, baseline, ours)


if __name__ == "__main__":
    main()
