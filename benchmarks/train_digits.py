"""Time `cnnlab train` with no flags against the lectures' plain loop on the same model and data.

    .venv/bin/python benchmarks/train_digits.py [--repeats N]

The baseline is the loop as the lectures write it: a DataLoader over a TensorDataset and
`running_loss += loss.item()` every step, with the same model, optimiser, schedule and epochs,
so the ratio measures the loop and data path, not the recipe. Writes
benchmarks/results/train_digits.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab import TrainConfig, train
from cnnlab.engine.optim import make_optimizer, make_scheduler
from cnnlab.accel.device import seed_everything
from cnnlab.training.prepare import prepare

RESULTS = Path(__file__).parent / "results"


def lecture_loop(config: TrainConfig) -> float:
    """Seconds for the lectures' loop (001 'Training', 002 training_loop) with cnnlab's recipe."""
    seed_everything(config.seed)
    _, batches, model = prepare(config, torch.device("cpu"))
    loaders = {name: DataLoader(TensorDataset(b.inputs, b.labels), batch_size=config.batch_size,
                                shuffle=name == "train") for name, b in batches.items()}
    loss_func = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler, _ = make_scheduler(optimizer, config, len(loaders["train"]))
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        running_loss = 0.0
        for inputs, labels in loaders["train"]:
            y_pred = model(inputs)
            loss = loss_func(y_pred, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item()
        model.eval()
        correct = 0
        with torch.no_grad():
            for inputs, labels in loaders["val"]:
                correct += (model(inputs).argmax(1) == labels).sum().item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    config = TrainConfig(device="cpu")
    ours, accuracy, baseline = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            result = train(TrainConfig(device="cpu", out=f"{folder}/run"), quiet=True)
        ours.append(result.seconds)
        accuracy.append(result.test_accuracy)
        baseline.append(lecture_loop(config))
    report = {
        "benchmark": "cnnlab train (defaults: lenet5, digits, 30 epochs) vs the lectures' loop",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "repeats": repeats,
        "cnnlab_seconds_median": statistics.median(ours),
        "lecture_loop_seconds_median": statistics.median(baseline),
        "speedup": statistics.median(baseline) / statistics.median(ours),
        "test_accuracy": accuracy,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_digits.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "train_digits.md").write_text(
        f"| {report['machine']} | cnnlab train | lectures' loop | speed-up |\n|---|---|---|---|\n"
        f"| median of {repeats} | {report['cnnlab_seconds_median']:.2f} s | "
        f"{report['lecture_loop_seconds_median']:.2f} s | {report['speedup']:.2f}x |\n"
        f"\nTest accuracy of the cnnlab runs: {', '.join(f'{a:.2%}' for a in accuracy)}\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
