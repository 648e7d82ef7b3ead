"""Exact resume after SIGKILL, clean stops on SIGTERM, and crash-safe checkpoint writes."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.runs.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.runs.resume import checkpoints

TRAIN = [sys.executable, "-m", "cnnlab", "train", "--epochs", "3", "--augment", "flip-crop",
         "--deterministic", "--quiet", "--model-kwargs", "activation=relu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels in every process
# Every test trains, kills or resumes processes (`straight` trains one): 4 to 25 s each.
pytestmark = pytest.mark.slow


def _start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*TRAIN, "--out", str(out), *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(process: subprocess.Popen, run: Path, name: str, timeout: float = 120) -> None:
    """SIGKILL the run as soon as checkpoint `name` exists (no chance to clean up)."""
    deadline = time.monotonic() + timeout
    while not (run / "checkpoints" / name).exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.kill()
    process.wait()


def _resume(run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(run),
                           "--quiet"], env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    done = subprocess.run([*TRAIN, "--out", str(out)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("killed_at, extra", [
    ("epoch-0002-step-000015.safetensors", ["--checkpoint-every", "5"]),   # mid-epoch
    ("epoch-0002-step-000000.safetensors", []),                             # epoch boundary
])
def test_a_killed_run_resumes_to_bit_identical_weights(straight, tmp_path, killed_at, extra):
    run = tmp_path / "run"
    _kill_when(_start(run, *extra), run, killed_at)
    assert not (run / "model.safetensors").exists()
    done = _resume(run)
    assert done.returncode == 0, done.stderr
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    ours = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in ours] == [1, 2, 3]  # none missing, none twice
    assert [m["train_loss"] for m in ours] == [m["train_loss"] for m in theirs]


def test_a_metrics_line_cut_by_sigkill_is_dropped_and_its_epoch_redone(straight, tmp_path):
    run = tmp_path / "run"
    _kill_when(_start(run), run, "epoch-0002-step-000000.safetensors")
    with open(run / "metrics.jsonl", "a") as handle:  # what a kill mid-append leaves
        handle.write('{"epoch": 2, "train_lo')
    done = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(run)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "last line was cut short" in done.stderr
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    ours = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in ours] == [1, 2, 3]


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    run = tmp_path / "run"
    process = _start(run, "--epochs", "50")
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "epoch-0002-step-000000.safetensors").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert f"cnnlab train --resume {run}" in err and "Traceback" not in err
    newest = checkpoints(run)[-1]
    assert load_checkpoint(newest)["tally"] is not None  # saved mid-epoch, where it stopped


def test_resume_refuses_to_change_the_recipe(straight, capsys):
    from cnnlab.cli.main import main
    assert main(["train", "--resume", str(straight), "--lr", "0.5"]) == 2
    assert "--lr cannot be changed" in capsys.readouterr().err


def test_fifty_sigkills_while_saving_never_lose_the_last_checkpoint(tmp_path):
    """Kill a process that is saving checkpoints over and over, at random moments."""
    state = {"weights": torch.randn(1_000_000), "epoch": 0}
    target = tmp_path / "checkpoint.safetensors"
    save_checkpoint(target, state)
    rng = random.Random(0)
    for kill in range(50):
        child = os.fork()
        if child == 0:  # the saver: rewrite the checkpoint until killed
            try:
                for epoch in range(1, 10_000):
                    save_checkpoint(target, {**state, "epoch": epoch})
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        loaded = load_checkpoint(target)  # always a complete checkpoint
        assert torch.equal(loaded["weights"], state["weights"])
    save_checkpoint(target, {**state, "epoch": -1})  # the next save cleans up after the kills
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]


@pytest.mark.parametrize("resume_from", ["epoch-0002-step-000000", "epoch-0002-step-000002",
                                         "epoch-0002-step-000001"])
def test_a_run_with_a_batch_limit_resumes_exactly_from_any_checkpoint(tmp_path, resume_from):
    """--limit-batches ends a pass early; a checkpoint after it (or at its last step) must
    still start the next pass where an uninterrupted run would."""
    import shutil
    from cnnlab import TrainConfig, train
    from cnnlab.training.run import resume_config
    config = TrainConfig(epochs=3, limit_batches=2, checkpoint_every=1, keep=100,
                         augment="flip-crop", out=str(tmp_path / "straight"))
    train(config, quiet=True)
    run = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight", run)
    (run / "model.safetensors").unlink()
    for checkpoint in checkpoints(run):
        if checkpoint.name > resume_from + ".safetensors":
            checkpoint.unlink()
    train(resume_config(str(run), {}), quiet=True)
    assert (run / "model.safetensors").read_bytes() == \
        (tmp_path / "straight" / "model.safetensors").read_bytes()
    metrics = lambda folder: (folder / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    keep = lambda line: {k: v for k, v in json.loads(line).items()  # noqa: E731
                         if k not in ("seconds", "images_per_second")}
    assert [keep(m) for m in metrics(run)] == [keep(m) for m in metrics(tmp_path / "straight")]
