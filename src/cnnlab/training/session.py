"""One training run from start (or resume) to finish, and what it owes the user on the way:
checkpoints that can be resumed exactly, a clean stop on Ctrl-C or SIGTERM, a loud stop on a
non-finite loss, and, under torchrun, one process writing for all.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..accel import distributed
from ..runs import resume, folder as runs
from . import transfer
from ..atomic import atomic_write_text
from ..logs import LOGGER
from ..runs.checkpoint import save_weights
from ..engine.loop import EpochTally, evaluate, fit
from ..errors import UserError
from ..accel.precision import FP32, Precision
from ..tasks.tta import with_tta
from .curves import plot_curves


class Interrupted(UserError):
    """Stopped by a signal after saving a checkpoint; the message says how to go on."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@contextmanager
def stop_requests():
    """SIGINT and SIGTERM set a flag the training loop reads between steps, instead of
    killing it half-way through an update or a save."""
    requested: list[int] = []
    handler = lambda signum, frame: requested.append(signum)  # noqa: E731
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def deterministic_mode(compiling: bool = True) -> None:
    """Only deterministic kernels (--deterministic); cuBLAS needs its workspace fixed first.

    torch.use_deterministic_algorithms also sets the compiler's own switch, and importing
    the compiler for it (torch._inductor, torch._dynamo) took 4 s on a 2-core CPU. A run that
    compiles nothing sets only the kernels' switch, which is all the rest of that function
    does, unless the compiler is loaded anyway."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    kernels_only = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compiling or kernels_only is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True)
    else:
        kernels_only(True, warn_only=False)
    torch.backends.cudnn.benchmark = False


@dataclass
class Session:
    config: object            # TrainConfig, as resolved by prepare()
    run_dir: Path
    model: torch.nn.Module    # possibly wrapped in DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: object
    per_batch: bool
    batches: dict
    world: distributed.World
    task: object = None       # what the outputs and targets mean (engine/task.py)
    quiet: bool = False
    history: list = field(default_factory=list)
    # Called with each epoch's metrics after the run's own bookkeeping (tensorboard.py).
    epoch_hooks: list = field(default_factory=list)
    precision: Precision = FP32  # the number format the steps run in (fastpath.setup)
    # With --ema: the weight average (engine/ema.py), updated every step; validation, the test and
    # the saved model use it instead of the trained weights.
    ema: torch.optim.swa_utils.AveragedModel | None = None

    def log(self, message: str) -> None:
        """One line of what the run reports (logs.py), from the main process only."""
        if self.world.main:
            LOGGER.info(message)

    def final_model(self) -> torch.nn.Module:
        """The weights the run delivers: their average with --ema, else the trained ones."""
        return self.ema.module if self.ema is not None else distributed.unwrap(self.model)

    def evaluated_model(self) -> torch.nn.Module:
        """What validation and the test see: the final model, through --tta."""
        return with_tta(self.final_model(), self.config.tta)

    def state(self, epoch: int, tally: EpochTally | None) -> dict:
        """Everything needed to continue: `epoch` is the one in progress (tally: its part
        done) or, with no tally, the next one to start."""
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        averaged = {"ema": self.ema.state_dict()} if self.ema is not None else {}
        return {"epoch": epoch, "tally": tally.state_dict() if tally else None,
                "model": distributed.unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": scheduler,
                "batches": self.batches["train"].state_dict(), "rng": resume.rng_state(),
                **averaged}

    def checkpoint(self, epoch: int, tally: EpochTally | None) -> None:
        if tally is not None:
            tally.check(epoch)  # never save weights that a nan or inf has reached
        if self.world.main:
            step = tally.steps if tally else 0
            resume.save_numbered(self.run_dir, epoch, step, self.state(epoch, tally),
                                 self.config.keep)

    def restore(self, state: dict, device) -> tuple[int, EpochTally | None]:
        for done in range(1, state["epoch"]):  # the same unfreezing as the original run
            transfer.after_epoch(distributed.unwrap(self.model), self.config, done)
        distributed.unwrap(self.model).load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.batches["train"].load_state_dict(state["batches"])
        resume.restore_rng(state["rng"])
        tally = EpochTally.from_state(state["tally"], device) if state["tally"] else None
        return state["epoch"], tally

    def run(self, start_epoch: int = 1, tally: EpochTally | None = None) -> list[dict]:
        config = self.config
        bar = tqdm(total=config.epochs * len(self.batches["train"]), unit="batch",
                   file=sys.stderr, leave=False,
                   disable=self.quiet or not self.world.main or not sys.stderr.isatty())
        bar.update((start_epoch - 1) * len(self.batches["train"]) + (tally.steps if tally else 0))
        with stop_requests() as stop:
            def on_step(epoch: int, tally: EpochTally) -> None:
                if self.ema is not None:  # before any checkpoint, which must include it
                    self.ema.update_parameters(distributed.unwrap(self.model))
                bar.update(1)
                every = config.checkpoint_every
                if stop or (every and tally.steps % every == 0):
                    self.checkpoint(epoch, tally)
                if stop:
                    raise Interrupted(
                        f"stopped at epoch {epoch}, step {tally.steps}, with a checkpoint saved; "
                        f"continue with: cnnlab train --resume {self.run_dir}", stop[0])

            def on_epoch_end(metrics: dict) -> None:
                transfer_counts = transfer.parameter_counts(distributed.unwrap(self.model))
                if config.pretrained is not None:
                    metrics.update(transfer_counts)
                if self.world.main:
                    runs.append_metrics(self.run_dir, metrics)
                self.checkpoint(metrics["epoch"] + 1, None)
                headline = self.task.headline
                bar.set_postfix({"epoch": metrics["epoch"], f"val_{headline.label}":
                                 headline.show(metrics[f"val_{headline.key}"])})
                self.log(epoch_line(metrics, config.epochs, headline))
                if transfer.after_epoch(distributed.unwrap(self.model), config, metrics["epoch"]):
                    self.log(f"unfroze the backbone after epoch {metrics['epoch']}: "
                             f"{transfer.describe(distributed.unwrap(self.model), config)}")
                for hook in self.epoch_hooks:
                    hook(metrics)

            # A task whose training is not the lectures' loop (two optimisers for a GAN,
            # optimised pixels for style transfer) brings its own `fit`, same signature.
            loop = getattr(self.task, "fit", fit)
            history = loop(self.model, self.batches["train"], self.batches["val"],
                          epochs=config.epochs - start_epoch + 1, start_epoch=start_epoch,
                          tally=tally, optimizer=self.optimizer, scheduler=self.scheduler,
                          scheduler_per_batch=self.per_batch, task=self.task,
                          clip_grad=config.clip_grad or None,
                          reduce=distributed.sum_tally(self.world),
                          on_step=on_step, on_epoch_end=on_epoch_end,
                          precision=self.precision, eval_model=self.evaluated_model())
            self._stop_if_asked(stop, "after the last epoch's validation")
        bar.close()
        return history

    def finish(self) -> dict[str, float]:
        """Final weights, curves and the test evaluation; returns the test metrics. A stop
        asked for meanwhile is honoured after the step under way, never by cutting it."""
        with stop_requests() as stop:
            if self.world.main:
                save_weights(self.final_model(), self.run_dir / runs.WEIGHTS)
                plot_curves(runs.read_metrics(self.run_dir), self.run_dir / runs.CURVES,
                            self.task.headline.key)
            self._stop_if_asked(stop, "with the model saved but not yet tested")
            test = evaluate(self.evaluated_model(), self.batches["test"], self.task,
                            precision=self.precision)
            self._stop_if_asked(stop, "during the test evaluation")
        return test.metrics()

    def _stop_if_asked(self, stop: list[int], when: str) -> None:
        """Every epoch is trained and checkpointed by then: resuming only finishes the run."""
        if stop:
            raise Interrupted(f"stopped {when}; every epoch is trained and saved, finish with: "
                              f"cnnlab train --resume {self.run_dir}", stop[0])


def epoch_line(m: dict, epochs: int, headline) -> str:
    """The progress line; a number a task does not measure is left out (a detector has no
    training mAP and no validation loss: its losses need the training mode)."""
    h = headline
    parts = [f"epoch {m['epoch']:>3}/{epochs}", f"loss {m['train_loss']:.4f}"]
    if "train_" + h.key in m:
        parts.append(f"{h.label} {h.show(m['train_' + h.key])}")
    if "val_loss" in m:
        parts.append(f"val_loss {m['val_loss']:.4f}")
    parts += [f"val_{h.label} {h.show(m['val_' + h.key])}", f"lr {m['lr']:.2g}",
              f"{m['images_per_second']:,.0f} img/s"]
    return "  ".join(parts)


def keep_metrics_before(run_dir: Path, epoch: int) -> None:
    """A resumed run redoes `epoch`: drop any line already written for it or later."""
    kept = [m for m in runs.read_metrics(run_dir) if m["epoch"] < epoch]
    atomic_write_text(run_dir / runs.METRICS, "".join(json.dumps(m) + "\n" for m in kept))
