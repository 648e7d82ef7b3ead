"""Images per second training U-Net on the shapes masks: the torchvision references' way
against cnnlab's engine.

    .venv/bin/python benchmarks/segment_unet.py [--images 2000] [--epochs 2]

Both train the same U-Net (depth 3, width 16, 4 classes: background and three shapes) with
Adam, batch 32, on the same 32x32 images with their masks, flipped and shifted (up to 4 px,
reflection) together, per-pixel cross-entropy ignoring 255, in float32.
- baseline: as torchvision's segmentation references train: a Dataset yielding an image and
  its tv_tensors.Mask through transforms v2 (RandomHorizontalFlip, RandomCrop with reflect
  padding), normalised per image, batched by a DataLoader (0 workers and one per core; the
  faster counts); `loss.item()` every step for the log line, as the references print it.
- cnnlab: engine.train_one_epoch with the segment task on in-memory batches, the mask riding
  along with the image through the whole-batch flip and shift, the confusion matrix summed on
  the device.
Each path runs one warm-up epoch, then `--epochs` timed epochs; the ratio is of the best
epoch of each. Writes benchmarks/results/segment_unet.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnnlab.data.augment import preset
from cnnlab.data.memory import TensorBatches, batch_transform
from cnnlab.data.shapes import generate_shapes
from cnnlab.data.transforms import Preprocess, channel_stats
from cnnlab.engine.loop import train_one_epoch
from cnnlab.models import create_model
from cnnlab.tasks.segment import IGNORE, Segment

RESULTS = Path(__file__).parent / "results"
BATCH, CLASSES = 32, 4


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


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("unet", num_classes=CLASSES)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def best_rate(run, epochs: int, images: int) -> float:
    run()  # warm-up: first-call allocations, worker start-up
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return images / min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = generate_shapes(args.images, 32, seed=0)
    mean, std = channel_stats(data.images)
    masks = data.class_masks

    baseline = {}
    for workers in sorted({0, os.cpu_count() or 1}):
        loader = DataLoader(ReferenceDataset(data.images, masks, mean, std), batch_size=BATCH,
                            shuffle=True, num_workers=workers, persistent_workers=workers > 0)
        model, optimizer = fresh()
        baseline[workers] = best_rate(lambda: reference_epoch(model, loader, optimizer),
                                      args.epochs, args.images)

    augment = preset("flip-crop")
    batches = TensorBatches(data.images, masks, BATCH, shuffle=True, augment=augment,
                            transform=batch_transform(Preprocess(3, (32, 32), mean, std), augment))
    model, optimizer = fresh()
    ours = best_rate(lambda: train_one_epoch(model, batches, Segment(), optimizer),
                     args.epochs, args.images)
    write_results("segment_unet", "unet (depth 3, width 16), 32x32x3 shapes masks, flip + "
                  "shift, batch 32, float32: training images per second", args, baseline, ours)


def write_results(name: str, title: str, args, baseline: dict[int, float], ours: float) -> None:
    """benchmarks/results/NAME.{json,md}: the references' rates per worker count, cnnlab's,
    and the ratio to the best reference; the table is printed too."""
    best = max(baseline.values())
    report = {
        "benchmark": title,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
        "images": args.images, "timed_epochs": args.epochs,
        "reference_images_per_second": {f"{w} workers": v for w, v in baseline.items()},
        "cnnlab_images_per_second": ours,
        "speedup_vs_best_reference": ours / best,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# {title}", "", f"{report['machine']}; {args.images} images, "
             f"best of {args.epochs} timed epochs", "", "| path | images/s |", "|---|---|"]
    lines += [f"| torchvision references' way, {w} | {v:,.0f} |"
              for w, v in report["reference_images_per_second"].items()]
    lines += [f"| cnnlab | {ours:,.0f} |", "", f"cnnlab / best reference: {ours / best:.2f}x"]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
