"""Numerical faults and hostile files: a nan stops the run cleanly; pickles never run."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from cnnlab.runs.checkpoint import load_checkpoint
from cnnlab.cli.main import main
from cnnlab.models import registry
from cnnlab.models.lenet import LeNet5
from cnnlab.runs.resume import checkpoints


class NanOnStep(LeNet5):
    """LeNet-5 whose output turns to nan on one training step, like a corrupt batch."""

    def __init__(self, bad_step: int, **kwargs):
        super().__init__(**kwargs)
        self.bad_step, self.calls = bad_step, 0

    def forward(self, x):
        out = super().forward(x)
        if self.training:
            self.calls += 1
            if self.calls == self.bad_step:
                out = out * float("nan")
        return out


@pytest.fixture
def nan_model():
    """Registered only for the test, so registry-wide tests never see it."""
    def nan_lenet(**kwargs):
        return NanOnStep(40 + 5, **kwargs)  # digits: 40 steps an epoch, so epoch 2, step 5
    registry.register_model(family="test", input_size=(1, 28, 28), paper="test double")(nan_lenet)
    yield "nan_lenet"
    registry._REGISTRY.pop("nan_lenet")


def test_a_nan_stops_the_run_at_its_step_and_leaves_good_checkpoints(nan_model, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", nan_model, "--epochs", "3", "--checkpoint-every", "2",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nan or inf at epoch 2, step 5" in err and "Traceback" not in err
    saved = checkpoints(out)
    assert saved[-1].name == "epoch-0002-step-000004.safetensors"  # the last one before the nan
    for path in saved:
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert not (out / "model.safetensors").exists()


class Payload:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _hostile_file(path: Path, marker: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump({"conv.weight": Payload(marker)}, handle)
    return path


def test_a_pickle_payload_never_runs_through_any_entry_point(tmp_path, short_run, capsys):
    marker = tmp_path / "pwned"
    hostile = _hostile_file(tmp_path / "weights.pt", marker)
    # --weights-file
    assert main(["train", "--weights-file", str(hostile), "--epochs", "1",
                 "--out", str(tmp_path / "a")]) == 2
    # predict: a run whose model file was replaced
    run = tmp_path / "copied"
    run.mkdir()
    (run / "config.json").write_text((short_run.run_dir / "config.json").read_text())
    _hostile_file(run / "model.safetensors", marker)
    png = tmp_path / "x.png"
    from PIL import Image
    Image.new("L", (8, 8)).save(png)
    assert main(["predict", str(run), str(png)]) == 2
    # --resume: a hostile newest checkpoint is skipped for the older, real one
    (run / "checkpoints").mkdir()
    _hostile_file(run / "checkpoints" / "epoch-0099-step-000000.safetensors", marker)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    errors = capsys.readouterr().err
    assert not marker.exists()
    assert "Traceback" not in errors and errors.count("cnnlab: error:") == 3
