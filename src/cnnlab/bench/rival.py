"""PyTorch Lightning's Trainer on the same model, data and batch size (a benchmark-only
dependency: `pip install 'cnnlab[bench]'`).

A fresh Trainer per round, as quiet as Lightning allows (no logger, checkpoints, progress
bar or validation); a callback times from the end of its untimed first steps to the end of
the last, so Trainer start-up is not counted against it. It gets the same number format as
cnnlab's steps, and the model as built, as a Lightning user would write it.
"""
from __future__ import annotations

import logging
import time
import warnings

import torch
from torch import nn

from ..accel.layout import synchronize
from .ours import LR, MOMENTUM

PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}


def version() -> str | None:
    try:
        import lightning
    except ImportError:
        return None
    return lightning.__version__


def _lightning():
    import lightning.pytorch as pl
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "GPU available: False ..." and such
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    return pl


class _Timer:
    """Times batches untimed+1 .. untimed+steps, whichever loop (fit or predict) runs."""

    def __init__(self, device, untimed: int, steps: int):
        self.device, self.untimed, self.steps = device, untimed, steps
        self.done, self.start, self.seconds = 0, None, None

    def tick(self) -> None:
        self.done += 1
        if self.done == self.untimed:
            synchronize(self.device)
            self.start = time.perf_counter()
        elif self.done == self.untimed + self.steps:
            synchronize(self.device)
            self.seconds = time.perf_counter() - self.start


class _Batches:
    """A list of batches as one iterable: Lightning reads a bare list as several loaders."""

    def __init__(self, batches: list):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def _module(model: nn.Module):
    pl = _lightning()

    class Classifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            inputs, labels = batch
            return nn.functional.cross_entropy(self.model(inputs), labels)

        def predict_step(self, batch, batch_idx):
            return self.model(batch[0]).argmax(1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    return Classifier()


class Lightning:
    """Trainer.fit (training) or Trainer.predict (inference) over `data`."""

    def __init__(self, model: nn.Module, data, device: torch.device, precision: str,
                 predict: bool = False):
        self.module, self.data, self.device = _module(model), data, device
        self.precision, self.predict = PRECISION[precision], predict
        workers = getattr(data, "num_workers", 0)  # a DataLoader's, as for the lectures' loop
        self.prefetched = workers * (getattr(data, "prefetch_factor", 0) or 0)

    def _trainer(self, timer: _Timer, batches: int):
        pl = _lightning()

        class Tick(pl.Callback):
            def on_train_batch_end(self, *args):
                timer.tick()

            def on_predict_batch_end(self, *args):
                timer.tick()

        accelerator = "gpu" if self.device.type == "cuda" else self.device.type
        devices = [self.device.index or 0] if self.device.type == "cuda" else 1
        return pl.Trainer(accelerator=accelerator, devices=devices, precision=self.precision,
                          max_steps=batches, limit_predict_batches=batches, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, num_sanity_val_steps=0,
                          limit_val_batches=0, callbacks=[Tick()])

    def _data(self, batches: int):
        """A DataLoader as it is; a list of batches in memory repeated to `batches` long, so
        that a round is one epoch, as cnnlab's compute-only round is one pass."""
        if not isinstance(self.data, list):
            return self.data
        return _Batches([self.data[i % len(self.data)] for i in range(batches)])

    def run(self, steps: int, untimed: int = 0) -> float:
        untimed = max(1, untimed)  # its first step also starts the loop
        timer = _Timer(self.device, untimed, steps)
        trainer = self._trainer(timer, untimed + steps)
        data = self._data(untimed + steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.predict:
                trainer.predict(self.module, dataloaders=data, return_predictions=False)
            else:
                trainer.fit(self.module, train_dataloaders=data)
        return timer.seconds
