"""The exact-resume check every task's tests run: train a short run straight, copy it, cut
the copy back to a mid-epoch checkpoint, resume it, and compare bytes and validation history.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

from cnnlab import TrainConfig, train
from cnnlab.training.run import resume_config

STOP = "epoch-0002-step-000001.safetensors"  # as if stopped after epoch 2's first step


def assert_resumes_exactly(config: TrainConfig, tmp_path, val_key: str) -> None:
    """`config` (2 epochs or more, a few batches each) trained straight and resumed from STOP
    end with the same weights, byte for byte, and the same `val_key` every epoch."""
    straight = tmp_path / "straight"
    train(dataclasses.replace(config, checkpoint_every=1, keep=100, out=str(straight)),
          quiet=True)
    run = tmp_path / "resumed"
    shutil.copytree(straight, run)
    (run / "model.safetensors").unlink()
    names = sorted(c.name for c in (run / "checkpoints").iterdir())
    assert STOP in names and names[-1] > STOP
    for name in names:
        if name > STOP:
            (run / "checkpoints" / name).unlink()
    train(resume_config(str(run), {}), quiet=True)
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()

    def history(folder):
        return [json.loads(line)[val_key] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert history(run) == history(straight) and len(history(run)) == config.epochs
