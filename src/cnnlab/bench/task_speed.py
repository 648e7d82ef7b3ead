"""`cnnlab bench --task segment|detect`: a task's training speed beside torchvision's
reference scripts (references/segmentation, references/detection), on the same model,
batch, transforms and images.

The references' way is a Dataset that transforms one image and its target at a time, a
DataLoader that batches them (with 0 workers and with one per core; the faster counts) and
`loss.item()` every step, as their metric logger reads it. cnnlab's way is its engine's
`train_one_epoch` on its in-memory batches. Each path runs one warm-up epoch, then the
timed epochs; each figure is its best epoch, and the claim is the ratio within one run.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import torch

TARGET = 1.0  # cnnlab's engine at least as fast as the references' loop


@dataclass(frozen=True)
class TaskSettings:
    images: int
    epochs: int               # timed, after one warm-up epoch
    workers: tuple = (0, None)  # the references' DataLoader workers; None: one per core


FULL = {"segment": TaskSettings(2000, 2), "detect": TaskSettings(320, 3)}
QUICK = TaskSettings(16, 1, (0,))  # seconds, for CI: the numbers mean nothing


def worker_counts(settings: TaskSettings) -> list[int]:
    return sorted({(os.cpu_count() or 1) if w is None else w for w in settings.workers})


def best_rate(run: Callable[[], None], epochs: int, images: int) -> float:
    """Images per second of the fastest of `epochs` timed epochs, after a warm-up one
    (first-call allocations, worker start-up)."""
    run()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return images / min(seconds)


def reference_rates(settings: TaskSettings, loader_for: Callable[[int], object],
                    fresh: Callable, epoch: Callable) -> dict[int, float]:
    """{DataLoader workers: images/s} of the references' loop, a fresh model each time:
    `loader_for(workers)`, `fresh() -> (model, optimizer)`, `epoch(model, loader, optimizer)`."""
    rates = {}
    for workers in worker_counts(settings):
        loader, (model, optimizer) = loader_for(workers), fresh()
        rates[workers] = best_rate(lambda: epoch(model, loader, optimizer), settings.epochs,
                                   settings.images)
    return rates


def task_result(task: str, title: str, settings: TaskSettings, baseline: dict[int, float],
                ours: float) -> dict:
    """The report: the references' rate per worker count, cnnlab's, the ratio to the best."""
    best = max(baseline.values())
    return {"cnnlab_bench": 1, "task": task, "benchmark": title,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "torch": torch.__version__},
            "images": settings.images, "timed_epochs": settings.epochs,
            "reference_images_per_second": {f"{w} workers": v for w, v in baseline.items()},
            "cnnlab_images_per_second": ours, "speedup_vs_best_reference": ours / best,
            "targets": [{"what": f"{task} training vs torchvision's references",
                         "measured": ours / best, "goal": TARGET, "met": ours / best >= TARGET}]}


def task_markdown(result: dict) -> str:
    lines = [f"# {result['benchmark']}", "",
             f"{result['machine']['cpus']} CPU cores, torch {result['machine']['torch']}; "
             f"{result['images']} images, best of {result['timed_epochs']} timed epochs", "",
             "| path | images/s |", "|---|---|"]
    lines += [f"| torchvision references' way, {w} | {v:,.0f} |"
              for w, v in result["reference_images_per_second"].items()]
    lines += [f"| cnnlab | {result['cnnlab_images_per_second']:,.0f} |", "",
              f"cnnlab / best reference: {result['speedup_vs_best_reference']:.2f}x "
              f"(target {TARGET:.1f}x)"]
    return "\n".join(lines) + "\n"
