"""SIGKILL at random moments of a whole run, 30 times: every time, what the killed process left
is finished by `cnnlab train --resume RUN` to the very weights an uninterrupted run ends with.

The moments are drawn over the whole of an uninterrupted run's duration, so they fall in
training, validation, checkpoint writes, the final test and the pictures at the end. A run
killed before it wrote config.json is no run yet: the user repeats the command, and so does
this test. The runs are forked from a process that imported cnnlab once (a fork server), so
thirty kills cost seconds of training rather than minutes of imports.
"""
from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path

import pytest

from cnnlab.runs.resume import checkpoints

KILLS = 30
# Two short epochs of LeNet-5 on digits, checkpoints every 4 steps and at the epoch ends, the
# layout and number format fixed (timing them may choose differently in another process).
TRAIN = ["train", "--epochs", "2", "--checkpoint-every", "4", "--deterministic", "--quiet",
         "--memory-format", "contiguous", "--precision", "fp32", "--workers", "0"]

pytestmark = pytest.mark.slow


def _cnnlab(argv: list[str]) -> None:
    import sys
    import torch
    from cnnlab.cli.main import main
    torch.set_num_threads(1)  # the same kernels in every process
    sys.exit(main(argv))


@pytest.fixture(scope="module")
def server():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "cnnlab.cli.main", "cnnlab.training.run",
                                    "matplotlib.pyplot"])
    return context


def _run(server, argv: list[str], run: Path | None = None, kill_after: float | None = None,
         kill_in_setup: bool = False) -> tuple[int | None, float]:
    """cnnlab with `argv` in a forked process: its exit status (None if it was killed) and
    the seconds until the run folder had its config.json. Unless `kill_in_setup`, the
    `kill_after` seconds count from that moment, so that the kills fall in the run proper."""
    process = server.Process(target=_cnnlab, args=(argv,))
    started = time.monotonic()
    process.start()
    while not kill_in_setup and run is not None and process.is_alive() \
            and not (run / "config.json").exists():
        time.sleep(0.002)
    setup = time.monotonic() - started
    process.join(kill_after)
    if process.is_alive():
        process.kill()  # SIGKILL: no handler runs, nothing is cleaned up
        process.join()
        return None, setup
    return process.exitcode, setup


def test_thirty_sigkills_at_random_moments_each_resume_to_the_uninterrupted_weights(
        server, tmp_path):
    assert _run(server, [*TRAIN, "--out", str(tmp_path / "first")])[0] == 0  # starts the server
    straight = tmp_path / "straight"
    started = time.monotonic()
    status, setup = _run(server, [*TRAIN, "--out", str(straight)], straight)
    assert status == 0
    rest = time.monotonic() - started - setup
    expected = (straight / "model.safetensors").read_bytes()
    assert (tmp_path / "first" / "model.safetensors").read_bytes() == expected
    rng, stages = random.Random(0), []
    for attempt in range(KILLS):
        run = tmp_path / f"killed-{attempt}"
        in_setup = attempt % 6 == 0  # one in six while the data and model are made ready
        status, _ = _run(server, [*TRAIN, "--out", str(run)], run,
                         rng.uniform(0, setup if in_setup else rest), in_setup)
        stages.append(_stage(run) if status is None else "not killed: it had finished")
        if checkpoints(run):
            again = ["train", "--resume", str(run), "--quiet"]
        else:  # killed before the first checkpoint: as --resume says, run the command again
            again = [*TRAIN, "--out", str(run)]
        assert _run(server, again)[0] == 0, f"kill {attempt} ({run})"
        assert (run / "model.safetensors").read_bytes() == expected, f"kill {attempt}"
        assert (run / "curves.png").exists()
        assert not [p for p in run.rglob("*") if ".cnnlab-tmp-" in p.name]
    print(f"{KILLS} kills; each left the run at:", sorted(stages))
    assert len(set(stages)) >= 4  # the kills fell at several stages of the run, not one


def _stage(run: Path) -> str:
    """How far a killed run had come, from the files it left."""
    if not (run / "config.json").exists():
        return "setting up"
    if (run / "curves.png").exists():
        return "finished"
    if (run / "model.safetensors").exists():
        return "final test or pictures"
    saved = sorted((run / "checkpoints").glob("*.safetensors"))
    return f"after {saved[-1].stem}" if saved else "before the first checkpoint"
