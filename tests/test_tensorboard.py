"""`cnnlab train --tensorboard`: TensorBoard reads back what metrics.jsonl says, epoch by epoch,
and the validation images the model saw."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from cnnlab import TrainConfig, UserError, train
from cnnlab.cli.main import build_parser, config_from_args
from cnnlab.runs.folder import read_metrics


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_holds_each_epochs_metrics_and_validation_samples(tmp_path):
    run = train(TrainConfig(epochs=2, limit_batches=3, tensorboard=True, out=str(tmp_path / "run")),
                quiet=True)
    events = _events(run.run_dir / "tensorboard")
    metrics = read_metrics(run.run_dir)
    assert [m["epoch"] for m in metrics] == [1, 2]
    # the tags a classification run's users know, each metric's train and validation paired
    for key, tag in {"train_loss": "loss/train", "val_loss": "loss/validation",
                     "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/validation",
                     "lr": "learning_rate",
                     "images_per_second": "throughput/images_per_second"}.items():
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        np.testing.assert_allclose([e.value for e in logged], [m[key] for m in metrics], rtol=1e-5)
    assert events.Tags()["tensors"] == ["config/text_summary"]

    # 16 validation digits as the model sees them (28x28, before normalisation), 8 a row.
    from cnnlab.data import load_dataset
    from cnnlab.runs.folder import read_spec
    spec = read_spec(run.run_dir)
    grid = np.asarray(Image.open(io.BytesIO(events.Images("samples/validation")[0].encoded_image_string)))
    assert grid.shape[:2] == (2 * 28, 8 * 28)
    first = spec.preprocess.fit_size(load_dataset("digits").val.images[:1])[0, 0].numpy()
    tile = grid[:28, :28] if grid.ndim == 2 else grid[:28, :28, 0]
    assert np.abs(tile.astype(int) - first.astype(int)).max() <= 1  # rounding only


def test_the_flag_is_generated_from_the_config():
    args = build_parser().parse_args(["train", "--tensorboard", "--epochs", "1"])
    assert config_from_args(args).tensorboard is True
    assert config_from_args(build_parser().parse_args(["train"])).tensorboard is False


def test_without_the_tensorboard_package_the_flag_fails_before_a_run_folder_is_made(
        tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now fails
    with pytest.raises(UserError, match=r"pip install 'cnnlab\[tensorboard\]'"):
        train(TrainConfig(epochs=1, tensorboard=True, out=str(tmp_path / "run")), quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_tasks_own_metrics_get_paired_tags():
    from cnnlab.training.tensorboard import scalar_tag
    assert scalar_tag("train_miou") == "miou/train" and scalar_tag("val_miou") == "miou/validation"
    assert scalar_tag("epoch") is None and scalar_tag("seconds") is None
