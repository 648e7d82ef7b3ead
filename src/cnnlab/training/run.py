"""`train(config)`: config -> data + model (prepare.py) -> task + engine -> run folder.

This is the wiring behind `cnnlab train`; the loop itself is engine.fit, what the outputs
mean is the task's (tasks/), and the files are runs/folder.py's. Nothing here knows a
particular model, data set or task.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from ..accel import distributed, fastpath
from ..runs import resume, folder as runs
from ..runs.checkpoint import mismatch
from ..runs.lock import training_lock
from ..runs.split_record import record_split
from . import session, transfer
from . import tensorboard as tensorboard_log
from ..config.train_config import TrainConfig
from ..engine.ema import make_ema
from ..errors import UserError
from ..logs import reported
from ..tasks import make_task
from ..layers.whitening import fit_whitening
from ..engine.optim import make_optimizer, make_scheduler
from ..accel.device import resolve_device, seed_everything
from .prepare import prepare


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    test: dict[str, float]  # the task's test metrics, e.g. {"loss": ..., "accuracy": ...}
    seconds: float
    parameters: dict = dataclasses.field(default_factory=dict)  # trainable and frozen, at the start
    main: bool = True  # False on the other processes of a torchrun job: they report nothing

    def __getattr__(self, name: str):
        """result.test_accuracy, result.test_loss ...: the test metrics by their recorded names."""
        test = self.__dict__.get("test", {})
        if name.startswith("test_") and name[5:] in test:
            return test[name[5:]]
        raise AttributeError(name)

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir),
                **{f"test_{k}": v for k, v in self.test.items()},
                "epochs": len(self.history),
                "seconds": self.seconds, **self.parameters, "history": self.history}


def train(config: TrainConfig, quiet: bool = False) -> TrainResult:
    """Train config.model on config.dataset and write the run folder; returns test metrics.

    With `config.resume` set to a run folder, the run continues from its newest checkpoint
    (see `resume_config` for building that config)."""
    config.validate()
    # what can be refused from the config alone is, before seconds of decoding and timing
    if config.resume:
        resume.require_checkpoints(Path(config.resume))
    else:
        runs.refuse_taken_out(config)
    if config.tensorboard:
        tensorboard_log.require()  # before the run folder is made, not after
    if config.deterministic:
        session.deterministic_mode(compiling=config.compile)
    device = resolve_device(config.device)
    world = distributed.init_world(device.type)
    device = distributed.device_for(world, device)
    seed_everything(config.seed)
    try:
        with reported(quiet), contextlib.ExitStack() as locks:
            return _train(config, device, world, quiet, locks)
    finally:
        distributed.finish(world)


def _train(config: TrainConfig, device, world, quiet: bool,
           locks: contextlib.ExitStack) -> TrainResult:
    if config.resume and world.main:  # before the data is read: a clash is said at once
        locks.enter_context(training_lock(Path(config.resume)))
    spec, pipeline, model = prepare(config, device, world)
    input_shape = (pipeline.preprocess.channels, *pipeline.preprocess.size)
    spec.config, fast = fastpath.setup(spec.config, model, input_shape, device, world,
                                       samples=pipeline.sizes["train"],
                                       steps=config.epochs * len(pipeline.batches["train"]))
    config, batches = spec.config, pipeline.batches
    run_dir = Path(config.resume) if config.resume else None
    if run_dir is None:
        run_dir = distributed.broadcast(world, _new_locked_run_dir(config, locks)
                                        if world.main else None)
    if world.main and not config.resume:
        runs.write_spec(run_dir, spec)
        record_split(run_dir, pipeline.splits)  # evaluate's test images stay these
        fastpath.write_record(run_dir, fast)
        if pipeline.skipped:
            runs.write_skipped(run_dir, pipeline.skipped)
    # A resumed run's whitening comes with its weights from the checkpoint.
    whitened = 0 if config.resume else fit_whitening(model, batches["train"])
    optimizer = make_optimizer(transfer.parameter_groups(model, config), config)
    parameters = transfer.parameter_counts(model)
    scheduler, per_batch = make_scheduler(optimizer, config, len(batches["train"]))
    wrapped = distributed.wrap(model, world, config.sync_bn)  # every process: rank 0's weights
    task = make_task(config.task, config)
    if hasattr(task, "attach"):  # a task that writes files of its own (a GAN's samples, its judge)
        task.attach(run_dir, world.main)
    run = session.Session(config, run_dir, wrapped, optimizer, scheduler, per_batch, batches,
                          world, task, quiet, precision=fast.precision,
                          ema=make_ema(model, config.ema) if config.ema else None)
    start_epoch, tally = 1, None
    if config.resume:
        try:
            start_epoch, tally = run.restore(resume.load_newest(run_dir, "cpu"), device)
        except RuntimeError as exc:  # load_state_dict's: the model is not the checkpoint's
            raise UserError(f"the checkpoints of {run_dir} do not fit the model its config.json "
                            f"describes ({mismatch(exc)}); was config.json edited?") from None
        if world.main:
            session.keep_metrics_before(run_dir, start_epoch)
        run.log(f"resuming {run_dir} at epoch {start_epoch}"
                f"{f', step {tally.steps}' if tally else ''}")
    if pipeline.skipped:
        run.log(f"skipped {len(pipeline.skipped)} unusable file(s); reasons in {run_dir / runs.SKIPPED}")
    run.log(f"training {config.model} ({transfer.describe(model, config)}) on {config.dataset} "
            f"({pipeline.sizes['train']:,} training images, augment {config.augment}, "
            f"{'in memory' if pipeline.in_memory else 'streamed'}) on {device}"
            f"{f' x {world.size} processes' if world.active else ''}; run folder {run_dir}")
    run.log(fast.describe())
    if whitened:
        run.log(f"first layer whitens patches, fitted on {whitened:,} training images")
    if config.ema or config.tta != "none":
        weights = f"an average of the weights (decay {config.ema})" if config.ema else "the weights"
        run.log(f"evaluating {weights}, test-time augmentation {config.tta}")
    start = time.perf_counter()
    with tensorboard_log.attached(run, spec, start_epoch):
        run.run(start_epoch, tally)
    seconds = time.perf_counter() - start
    test = run.finish()
    loss = f" (loss {test['loss']:.4f})" if "loss" in test else ""
    run.log(f"test {task.headline.key} {task.headline.show(test[task.headline.key])}{loss} "
            f"after {config.epochs} epoch{'s' * (config.epochs != 1)} in {seconds:.1f} s; "
            f"model saved in {run_dir}")
    return TrainResult(run_dir, runs.read_metrics(run_dir), test, seconds, parameters, world.main)


def _new_locked_run_dir(config: TrainConfig, locks: contextlib.ExitStack) -> Path:
    """The new run folder, held by this process; two runs started with the same --out at
    once: the second is refused, whichever step it had reached."""
    run_dir = runs.new_run_dir(config)
    locks.enter_context(training_lock(run_dir))
    runs.refuse_taken_out(config)  # again, now that no other process can be writing it
    runs.clear_stopped_run(run_dir)
    return run_dir


# What may differ when a run is resumed: where it runs, and how long it goes on.
RESUME_OVERRIDES = {"epochs", "device", "workers", "data_loading", "data_dir", "checkpoint_every",
                    "keep", "resume", "tensorboard", "compile"}


# Schedules whose curve is drawn over the whole run: another --epochs is another curve.
LENGTH_SHAPED = ("onecycle", "cosine")


def resume_config(run_dir: str, given: dict) -> TrainConfig:
    """The resumed run's config: its own config.json, with only harmless overrides. Flags
    that repeat the run's own values are fine (the original command with --resume added)."""
    saved = runs.read_spec(run_dir).config
    changed = sorted(k for k in set(given) - RESUME_OVERRIDES if not _unchanged(saved, k, given[k]))
    if changed:
        raise UserError(f"--resume continues a run as it was configured; "
                        f"--{changed[0].replace('_', '-')} cannot be changed (only "
                        f"{', '.join('--' + k.replace('_', '-') for k in sorted(RESUME_OVERRIDES - {'resume'}))}).")
    resumed = saved.updated({**given, "resume": str(run_dir), "augment": saved.augment})
    _check_new_length(saved, resumed.epochs, run_dir)
    return resumed


def _unchanged(saved: TrainConfig, key: str, value) -> bool:
    if key == "model_kwargs":  # given as KEY=VALUE pairs, merged into the saved ones
        return {**saved.model_kwargs, **dict(value)} == saved.model_kwargs
    try:
        return saved.updated({key: value}) == saved
    except UserError:
        return False


def _check_new_length(saved: TrainConfig, epochs: int, run_dir: str) -> None:
    if epochs < saved.epochs:
        raise UserError(f"--epochs {epochs} is fewer than the {saved.epochs} the run was "
                        "started for; --resume can only continue or extend a run.")
    if epochs > saved.epochs and saved.scheduler in LENGTH_SHAPED:
        raise UserError(f"--scheduler {saved.scheduler} draws its rate over the run's "
                        f"{saved.epochs} epochs, so extending it cannot resume exactly; train "
                        f"on from its weights instead: cnnlab train --weights-file "
                        f"{Path(run_dir) / runs.WEIGHTS} --epochs {epochs - saved.epochs} "
                        "(with the run's other flags).")
