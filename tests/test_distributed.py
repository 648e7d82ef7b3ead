"""Two-process data parallel training on CPU (gloo), launched the way users do: torchrun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two trainings in subprocesses, one of them with torchrun

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ARGS = ["-m", "cnnlab", "train", "--model", "lecture_cnn", "--epochs", "6", "--json", "--quiet"]
TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", "2"]
# Same global batch (2 x 16 = 32), different arithmetic order: not bit-identical, but as good.
TOLERANCE = 0.03


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one = subprocess.run([sys.executable, *ARGS, "--batch-size", "32", "--out", str(tmp_path / "one")],
                         env=ENV, capture_output=True, text=True, timeout=300)
    two = subprocess.run([*TORCHRUN, *ARGS, "--batch-size", "16", "--out", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    lines = two.stdout.strip().splitlines()
    assert len(lines) == 1  # rank 0 alone reports
    single, parallel = json.loads(one.stdout), json.loads(lines[0])
    assert abs(single["test_accuracy"] - parallel["test_accuracy"]) <= TOLERANCE
    assert parallel["test_accuracy"] > 0.9
    run = tmp_path / "two"
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]  # one writer: no line twice
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


def test_a_detector_trains_under_torchrun_with_each_process_on_its_share(tmp_path):
    """torchvision's detectors take the targets in their forward: DDP wraps them the same."""
    run = tmp_path / "det"
    two = subprocess.run([*TORCHRUN, "-m", "cnnlab", "train", "--task", "detect", "--model",
                          "fcos", "--model-kwargs", "backbone=resnet18", "--dataset",
                          "shapes-objects", "--epochs", "1", "--limit-batches", "3",
                          "--batch-size", "4", "--json", "--quiet", "--out", str(run)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    lines = two.stdout.strip().splitlines()
    assert len(lines) == 1 and "test_map50" in json.loads(lines[0])  # rank 0 alone reports
    (epoch,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # 3 steps of 4 images in each of the 2 processes
    assert epoch["images_per_second"] * epoch["seconds"] == pytest.approx(24, rel=1e-6)
