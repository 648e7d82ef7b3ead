"""Images per second: the lectures' data path against cnnlab's in-memory fast path.

    .venv/bin/python benchmarks/data_path.py [--images 10000] [--epochs 2]

Both train the lecture CNN (001) with SGD (lr 0.01, momentum 0.9), batch 64, on the same
10,000 CIFAR-shaped 32x32 colour images (the synthetic `shapes` set) with random crop
(padding 4) and horizontal flip.
- baseline: the lectures' way (003 'custom Dataset', 001 'Training'): a torchvision-style
  Dataset turning each uint8 array into a PIL image, then RandomCrop, RandomHorizontalFlip,
  ToTensor and Normalize per image, batched by a DataLoader; `loss.item()` every step. Run
  with 0 and with one worker per core; the faster counts.
- cnnlab: the whole set as one uint8 tensor, flip/crop/normalise on whole batches.
Each path runs one warm-up epoch, then `--epochs` timed epochs. Writes
benchmarks/results/data_path.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cnnlab.data.augment import preset
from cnnlab.data.memory import TensorBatches, batch_transform
from cnnlab.data.shapes import generate_shapes
from cnnlab.data.transforms import Preprocess, channel_stats
from cnnlab.engine.loop import train_one_epoch
from cnnlab.models import create_model
from cnnlab.tasks.classify import Classify

RESULTS = Path(__file__).parent / "results"


class LectureDataset(Dataset):
    """As torchvision's CIFAR10 does it: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def lecture_epoch(model, loader, optimizer, loss_func) -> None:
    model.train()
    for inputs, labels in loader:
        y_pred = model(inputs)
        loss = loss_func(y_pred, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the lectures' running_loss += loss.item()


def timed(run_epoch, epochs: int, images: int) -> float:
    run_epoch()  # warm-up: worker start, allocator, first-call overheads
    start = time.perf_counter()
    for _ in range(epochs):
        run_epoch()
    return epochs * images / (time.perf_counter() - start)


def fresh(classes):
    torch.manual_seed(0)
    model = create_model("lecture_cnn", num_classes=classes)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = generate_shapes(args.images, 32, seed=0)
    classes = len(data.classes)
    mean, std = channel_stats(data.images)
    loss_func = nn.CrossEntropyLoss()

    per_image = transforms.Compose([
        transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(mean, std)])
    hwc = data.images.permute(0, 2, 3, 1).numpy()
    baseline = {}
    for workers in sorted({0, os.cpu_count() or 1}):
        loader = DataLoader(LectureDataset(hwc, data.labels.numpy(), per_image), batch_size=64,
                            shuffle=True, num_workers=workers, persistent_workers=workers > 0)
        model, optimizer = fresh(classes)
        baseline[workers] = timed(lambda: lecture_epoch(model, loader, optimizer, loss_func),
                                  args.epochs, args.images)

    batches = TensorBatches(data.images, data.labels, 64, shuffle=True,
                            transform=batch_transform(Preprocess(3, (32, 32), mean, std),
                                                      preset("flip-crop")))
    model, optimizer = fresh(classes)
    ours = timed(lambda: train_one_epoch(model, batches, Classify(), optimizer),
                 args.epochs, args.images)
    best = max(baseline.values())
    report = {
        "benchmark": "lecture_cnn, 32x32x3, flip + crop, batch 64: images per second",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
        "images": args.images, "timed_epochs": args.epochs,
        "lecture_loop_images_per_second": {f"{w} workers": v for w, v in baseline.items()},
        "cnnlab_in_memory_images_per_second": ours,
        "speedup_vs_best_baseline": ours / best,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data_path.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = "".join(f"| lectures' loop, {w} workers | {v:,.0f} |\n" for w, v in baseline.items())
    (RESULTS / "data_path.md").write_text(
        f"{report['machine']}; {args.images:,} images, {args.epochs} timed epochs\n\n"
        f"| path | images/s |\n|---|---|\n{rows}| cnnlab in memory | {ours:,.0f} |\n\n"
        f"speed-up over the faster baseline: {ours / best:.2f}x\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
