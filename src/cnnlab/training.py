"""`train(config)`: config -> data + model -> engine -> run folder.

This is the wiring behind `cnnlab train`; the loop itself is engine.fit, and the files
are runs.py's. Nothing here knows a particular model or data set.
"""
from __future__ import annotations

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
from .data import Preprocess, load_dataset
from .data.memory import TensorBatches
from .engine import evaluate, fit
from .models import model_info
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
    """The run's data, preprocessing and freshly initialised model."""
    info = model_info(config.model)  # an unknown model fails before any data is loaded
    splits = load_dataset(config.dataset, config.data_dir)
    channels, height, width = info.input_size
    preprocess = Preprocess.fit(splits.train.images, channels, (height, width))
    spec = runs.RunSpec(config, splits.classes, {
        "num_classes": len(splits.classes), "in_channels": channels,
        "kwargs": dict(config.model_kwargs)}, preprocess)
    batches = {name: TensorBatches(preprocess(split.images), split.labels, config.batch_size,
                                   shuffle=name == "train", seed=config.seed, device=device)
               for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    return spec, batches, spec.build_model().to(device)


def train(config: TrainConfig, quiet: bool = False) -> TrainResult:
    """Train config.model on config.dataset and write the run folder; returns test metrics."""
    config.validate()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    spec, batches, model = prepare(config, device)
    run_dir = runs.new_run_dir(config)
    runs.write_spec(run_dir, spec)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler, per_batch = make_scheduler(optimizer, config, len(batches["train"]))
    _log(f"training {config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
         f"{config.dataset} ({len(batches['train'].labels):,} training images) on {device}; "
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
