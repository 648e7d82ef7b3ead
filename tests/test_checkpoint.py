"""Checkpoints: safetensors + JSON in one file, written atomically, loaded without pickle."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.atomic import TEMP_PREFIX, atomic_write_bytes, atomic_write_text
from cnnlab.runs.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from cnnlab.errors import UserError


def _trained_pair():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(2):
        model(torch.randn(5, 1, 8, 8)).sum().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_checkpoint_round_trip_restores_optimizer_and_scheduler_exactly(tmp_path):
    model, optimizer, scheduler = _trained_pair()
    save_checkpoint(tmp_path / "ckpt.safetensors", {
        "epoch": 2, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict()})
    state = load_checkpoint(tmp_path / "ckpt.safetensors")
    torch.manual_seed(1)
    fresh = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
    fresh_sched = torch.optim.lr_scheduler.StepLR(fresh_opt, step_size=1, gamma=0.5)
    fresh.load_state_dict(state["model"])
    fresh_opt.load_state_dict(state["optimizer"])
    fresh_sched.load_state_dict(state["scheduler"])
    assert state["epoch"] == 2
    assert fresh_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == 0.0025
    for p in model.parameters():
        q = dict(zip(map(id, model.parameters()), fresh.parameters()))[id(p)]
        assert torch.equal(optimizer.state[p]["exp_avg"], fresh_opt.state[q]["exp_avg"])
    # One more identical step from both keeps them identical: the state really was restored.
    x = torch.randn(5, 1, 8, 8)
    for m, opt in ((model, optimizer), (fresh, fresh_opt)):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))


def test_a_failed_write_leaves_the_previous_file_and_stale_temporaries_are_cleaned(tmp_path):
    target = tmp_path / "model.safetensors"
    atomic_write_bytes(target, b"first")

    # A write killed half-way leaves a temporary file behind, never a half-written target;
    # the next write removes it because the process that made it is gone.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f"{TEMP_PREFIX}{gone}-model.safetensors.abc").write_bytes(b"half")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # cannot be written: the save fails mid-way
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second" and len(os.listdir(tmp_path)) == 1


def test_the_clean_up_leaves_a_users_files_and_a_live_writers_temporary_alone(tmp_path):
    mine = tmp_path / ".tmp-important-notes.txt"
    mine.write_text("keep me")
    live = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-other.json.xyz"  # a live process's save
    live.write_text("{")
    atomic_write_text(tmp_path / "config.json", "{}")
    assert mine.read_text() == "keep me" and live.exists()


@pytest.mark.parametrize("kind", ["symlink", "folder", "device"])
def test_a_path_that_is_not_a_regular_file_is_refused_and_left_as_it_was(tmp_path, kind):
    other = tmp_path / "elsewhere.txt"
    other.write_text("a user's file")
    target = tmp_path / "picture.png"
    if kind == "symlink":
        target.symlink_to(other)
    elif kind == "folder":
        target.mkdir()
    else:
        target = Path("/dev/null")
    with pytest.raises(UserError, match="not a regular file"):
        atomic_write_bytes(target, b"png")
    assert other.read_text() == "a user's file"
    assert target.is_symlink() or target.is_dir() or target.is_char_device()


def test_weights_of_another_shape_are_a_clear_error(tmp_path):
    save_weights(nn.Linear(3, 2), tmp_path / "w.safetensors")
    with pytest.raises(UserError, match="do not fit the model its config.json describes"):
        load_weights(nn.Linear(4, 2), tmp_path / "w.safetensors")


def test_a_file_that_is_not_safetensors_is_a_clear_error(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(UserError, match="not a readable"):
        load_weights(nn.Linear(3, 2), tmp_path / "w.safetensors")
    with pytest.raises(UserError, match="not a readable cnnlab checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")
