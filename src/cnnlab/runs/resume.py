"""Everything an exact resume needs: numbered checkpoints and every random state.

A checkpoint is written at every epoch end and every `--checkpoint-every` steps, to
RUN/checkpoints/epoch-EEEE-step-SSSSSS.safetensors (atomically, see checkpoint.py); the
newest `--keep` are kept. `cnnlab train --resume RUN` loads the newest and carries on as if
nothing had happened: same batches, same augmentations, same dropout masks.
"""
from __future__ import annotations

import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from ..errors import UserError
from ..logs import LOGGER

FOLDER = "checkpoints"
# What a checkpoint must hold for a resume to carry on exactly (training/session.py writes it).
RESUMES_FROM = ("epoch", "tally", "model", "optimizer", "scheduler", "batches", "rng")
NAME = re.compile(r"epoch-(\d+)-step-(\d+)\.safetensors$")


def rng_state() -> dict:
    """The global generators: python's, numpy's, torch's (CPU and every GPU)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8).cpu() for s in state["cuda"]])


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    found = [(tuple(map(int, NAME.search(p.name).groups())), p)
             for p in (Path(run_dir) / FOLDER).glob("epoch-*-step-*.safetensors")
             if NAME.search(p.name)]
    return [p for _, p in sorted(found)]


def save_numbered(run_dir: Path, epoch: int, step: int, state: dict, keep: int) -> Path:
    """Write a new checkpoint, then delete all but the newest `keep`."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(exist_ok=True)
    path = folder / f"epoch-{epoch:04d}-step-{step:06d}.safetensors"
    started = time.perf_counter()
    save_checkpoint(path, state)
    LOGGER.debug("checkpoint %s written: %s bytes in %.3f s.", path, f"{path.stat().st_size:,}",
                 time.perf_counter() - started)
    for old in checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        LOGGER.debug("checkpoint %s removed (--keep %d).", old, keep)
    return path


def require_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first; none is a one-sentence error (checked before the
    data set is decoded, so a wrong folder is said at once)."""
    found = checkpoints(run_dir)
    if not found and (Path(run_dir) / "config.json").is_file():  # stopped before the first
        raise UserError(f"{run_dir} has no checkpoint to resume from: its run stopped before "
                        "the first one, so nothing was trained; run the command that started "
                        "it again (its --out folder is used again).")
    if not found:
        raise UserError(f"{run_dir} has no checkpoint to resume from (no {FOLDER}/ files).")
    return found


def load_newest(run_dir: Path, device="cpu") -> dict:
    """The newest checkpoint that loads; an older one if the newest is damaged, saying so."""
    refused = []
    for path in reversed(require_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path, device)
        except UserError as exc:
            refused.append(f"{path.name} ({exc})")
            continue
        lacking = [key for key in RESUMES_FROM if key not in state]
        if lacking or not isinstance(state["epoch"], int) or state["epoch"] < 1:
            refused.append(f"{path.name} (it lacks {', '.join(lacking) or 'a valid epoch'})")
            continue
        if refused:
            LOGGER.warning("resuming from %s: the newer %s could not be read.", path.name,
                           "; ".join(refused))
        return state
    raise UserError(f"none of the checkpoints in {Path(run_dir) / FOLDER} could be read.")
