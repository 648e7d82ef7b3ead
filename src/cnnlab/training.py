"""`train(config)`: config -> data + model -> engine -> run folder.

This is the wiring behind `cnnlab train`; the loop itself is engine.fit, and the files
are runs.py's. Nothing here knows a particular model or data set.
"""
from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import runs
from .checkpoint import save_checkpoint, save_weights
from .config import TrainConfig
from .data import load_dataset
from .data.pipeline import build_pipeline
from .engine import evaluate, fit
from .models import model_info, plan_input
from .models.weights import load_pretrained, pretrained_options
from .optim import make_optimizer, make_scheduler
from .runtime import resolve_device, seed_everything
from .viz import plot_curves


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    test_loss: float
    test_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "test_accuracy": self.test_accuracy,
                "test_loss": self.test_loss, "epochs": len(self.history),
                "seconds": self.seconds, "history": self.history}


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        tqdm.write(message, file=sys.stderr)


def _epoch_line(m: dict, epochs: int) -> str:
    return (f"epoch {m['epoch']:>3}/{epochs}  loss {m['train_loss']:.4f}  "
            f"acc {m['train_accuracy']:.2%}  val_loss {m['val_loss']:.4f}  "
            f"val_acc {m['val_accuracy']:.2%}  lr {m['lr']:.2g}  {m['images_per_second']:,.0f} img/s")


def prepare(config: TrainConfig, device: torch.device):
    """The run's spec (config as resolved), batches and freshly initialised model."""
    info = model_info(config.model)  # an unknown model fails before any data is loaded
    splits = load_dataset(config.dataset, config.data_dir, config.download)
    if config.augment == "auto":
        config = dataclasses.replace(config, augment=splits.augment)
    (channels, height, width), kwargs = _model_args(config, info, splits)
    pipeline = build_pipeline(splits, channels, (height, width), batch_size=config.batch_size,
                              device=device, augment=config.augment, loading=config.data_loading,
                              workers=config.workers, bad_files=config.bad_files, seed=config.seed)
    if config.limit_batches:
        pipeline.batches = {name: LimitedBatches(batches, config.limit_batches)
                            for name, batches in pipeline.batches.items()}
    spec = runs.RunSpec(config, splits.classes, {
        "num_classes": len(splits.classes), "in_channels": channels,
        "kwargs": kwargs}, pipeline.preprocess)
    model = spec.build_model()
    if config.weights is not None or config.weights_file is not None:
        load_pretrained(model, config.weights, config.weights_file)
    return spec, pipeline, model.to(device)


def _model_args(config: TrainConfig, info, splits):
    """The model's input size (C, H, W) and options: --model-kwargs, --norm, the layout that
    torchvision's weights need, and the stem that suits the images (models/registry.plan_input:
    small images train ImageNet architectures through their small-input stem, not at 224x224)."""
    kwargs = {**pretrained_options(info, config.weights), **config.model_kwargs}
    if config.norm is not None:
        kwargs["norm"] = config.norm
    images = getattr(splits.train, "images", None)  # files of unknown size: the ImageNet stem
    image_size = tuple(images.shape[-2:]) if images is not None else None
    pretrained = config.weights is not None or config.weights_file is not None
    (channels, height, width), kwargs = plan_input(info, image_size, kwargs, pretrained)
    with torch.device("meta"):  # a bad option fails now, not after the data is resized for it
        info.build(len(splits.classes), channels, **kwargs)
    return (channels, height, width), kwargs


class LimitedBatches:
    """The first `limit` batches of each pass (--limit-batches, for quick smoke runs)."""

    def __init__(self, batches, limit: int):
        self.batches, self.limit = batches, limit

    def __len__(self) -> int:
        return min(len(self.batches), self.limit)

    def __iter__(self):
        return itertools.islice(iter(self.batches), self.limit)

    def __getattr__(self, name):  # anything else (labels, dataset ...) is the wrapped batches'
        if name == "batches":
            raise AttributeError(name)
        return getattr(self.batches, name)


def train(config: TrainConfig, quiet: bool = False) -> TrainResult:
    """Train config.model on config.dataset and write the run folder; returns test metrics."""
    config.validate()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    spec, pipeline, model = prepare(config, device)
    config, batches = spec.config, pipeline.batches
    run_dir = runs.new_run_dir(config)
    runs.write_spec(run_dir, spec)
    if pipeline.skipped:
        runs.write_skipped(run_dir, pipeline.skipped)
        _log(f"skipped {len(pipeline.skipped)} unusable file(s); reasons in {run_dir / runs.SKIPPED}",
             quiet)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler, per_batch = make_scheduler(optimizer, config, len(batches["train"]))
    _log(f"training {config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
         f"{config.dataset} ({pipeline.sizes['train']:,} training images, "
         f"augment {config.augment}, {'in memory' if pipeline.in_memory else 'streamed'}) on {device}; "
         f"run folder {run_dir}", quiet)

    bar = tqdm(total=config.epochs * len(batches["train"]), unit="batch", file=sys.stderr,
               disable=quiet or not sys.stderr.isatty(), leave=False)

    def end_epoch(metrics: dict) -> None:
        runs.append_metrics(run_dir, metrics)
        save_checkpoint(run_dir / runs.CHECKPOINT, {
            "epoch": metrics["epoch"], "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None})
        bar.set_postfix(epoch=metrics["epoch"], val_acc=f"{metrics['val_accuracy']:.2%}")
        _log(_epoch_line(metrics, config.epochs), quiet)

    start = time.perf_counter()
    history = fit(model, batches["train"], batches["val"], epochs=config.epochs,
                  optimizer=optimizer, scheduler=scheduler, scheduler_per_batch=per_batch,
                  loss_fn=loss_fn, on_epoch_end=end_epoch, on_step=lambda: bar.update(1))
    bar.close()
    seconds = time.perf_counter() - start
    save_weights(model, run_dir / runs.WEIGHTS)
    plot_curves(history, run_dir / runs.CURVES)
    test = evaluate(model, batches["test"])
    _log(f"test accuracy {test.accuracy:.2%} (loss {test.loss:.4f}) after {config.epochs} epochs "
         f"in {seconds:.1f} s; model saved in {run_dir}", quiet)
    return TrainResult(run_dir, history, test.loss, test.accuracy, seconds)
