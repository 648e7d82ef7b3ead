"""`train(config)`: config -> data + model -> engine -> run folder.

This is the wiring behind `cnnlab train`; the loop itself is engine.fit, and the files
are runs/folder.py's. Nothing here knows a particular model or data set.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..accel import distributed, fastpath
from ..runs import resume, folder as runs
from . import session, transfer
from . import tensorboard as tensorboard_log
from ..config.train_config import TrainConfig
from ..data import load_dataset
from ..data.catalog import typical_size
from ..data.pipeline import build_pipeline
from ..engine.ema import make_ema
from ..errors import UserError
from ..layers.whitening import fit_whitening
from ..models import model_info, plan_input
from ..models.weights import load_pretrained, pretrained_options
from ..engine.optim import make_optimizer, make_scheduler
from ..accel.device import resolve_device, seed_everything


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    test_loss: float
    test_accuracy: float
    seconds: float
    parameters: dict = dataclasses.field(default_factory=dict)  # trainable and frozen, at the start
    main: bool = True  # False on the other processes of a torchrun job: they report nothing

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "test_accuracy": self.test_accuracy,
                "test_loss": self.test_loss, "epochs": len(self.history),
                "seconds": self.seconds, **self.parameters, "history": self.history}


def prepare(config: TrainConfig, device: torch.device, world: distributed.World | None = None):
    """The run's spec (config as resolved), batches and freshly initialised model."""
    if config.pretrained is not None:
        return transfer.prepare(config, device, world)
    info = model_info(config.model)  # an unknown model fails before any data is loaded
    splits = load_dataset(config.dataset, config.data_dir, config.download)
    if config.augment == "auto":
        config = dataclasses.replace(config, augment=splits.augment)
    (channels, height, width), kwargs = _model_args(config, info, splits)
    pipeline = make_pipeline(config, splits, channels, (height, width), device, world)
    spec = runs.RunSpec(config, splits.classes, {
        "num_classes": len(splits.classes), "in_channels": channels,
        "kwargs": kwargs}, pipeline.preprocess)
    model = spec.build_model()
    if config.weights is not None or config.weights_file is not None:
        load_pretrained(model, config.weights, config.weights_file)
    return spec, pipeline, model.to(device)


def make_pipeline(config: TrainConfig, splits, channels: int, size, device,
                  world: distributed.World | None = None, preprocess=None):
    """The data pipeline as the config asks for it, with this process's share under torchrun."""
    world = world or distributed.World()
    pipeline = build_pipeline(splits, channels, size, batch_size=config.batch_size,
                              device=device, augment=config.augment, loading=config.data_loading,
                              workers=config.workers, bad_files=config.bad_files, seed=config.seed,
                              preprocess=preprocess, rank=world.rank, world=world.size)
    if config.limit_batches:
        pipeline.batches = {name: LimitedBatches(batches, config.limit_batches)
                            for name, batches in pipeline.batches.items()}
    return pipeline


def _model_args(config: TrainConfig, info, splits):
    """The model's input size (C, H, W) and options: --model-kwargs, --norm, the layout that
    torchvision's weights need, and the stem that suits the images (models/registry.plan_input:
    small images train ImageNet architectures through their small-input stem, not at 224x224)."""
    kwargs = {**pretrained_options(info, config.weights), **config.model_kwargs}
    if config.norm is not None:
        kwargs["norm"] = config.norm
    image_size = typical_size(splits.train)
    pretrained = config.weights is not None or config.weights_file is not None
    (channels, height, width), kwargs = plan_input(info, image_size, kwargs, pretrained)
    with torch.device("meta"):  # a bad option fails now, not after the data is resized for it
        info.build(len(splits.classes), channels, **kwargs)
    return (channels, height, width), kwargs


class LimitedBatches:
    """The first `limit` batches of each pass (--limit-batches, for quick smoke runs)."""

    def __init__(self, batches, limit: int):
        self.batches, self.limit = batches, limit
        self.resumed_at = 0  # batches of the pass already done before a resume

    def __len__(self) -> int:
        return min(len(self.batches), self.limit)

    def __iter__(self):
        # A pass resumed part-way starts after the batches it had done: it owes fewer.
        owed, self.resumed_at = self.limit - self.resumed_at, 0
        return itertools.islice(iter(self.batches), max(owed, 0))

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)
        self.resumed_at = int(state["position"])

    def __getattr__(self, name):  # anything else (labels, dataset ...) is the wrapped batches'
        if name == "batches":
            raise AttributeError(name)
        return getattr(self.batches, name)


def train(config: TrainConfig, quiet: bool = False) -> TrainResult:
    """Train config.model on config.dataset and write the run folder; returns test metrics.

    With `config.resume` set to a run folder, the run continues from its newest checkpoint
    (see `resume_config` for building that config)."""
    config.validate()
    if config.tensorboard:
        tensorboard_log.require()  # before the run folder is made, not after
    if config.deterministic:
        session.deterministic_mode()
    device = resolve_device(config.device)
    world = distributed.init_world(device.type)
    device = distributed.device_for(world, device)
    seed_everything(config.seed)
    try:
        return _train(config, device, world, quiet)
    finally:
        distributed.finish(world)


def _train(config: TrainConfig, device, world, quiet: bool) -> TrainResult:
    spec, pipeline, model = prepare(config, device, world)
    input_shape = (pipeline.preprocess.channels, *pipeline.preprocess.size)
    spec.config, fast = fastpath.setup(spec.config, model, input_shape, device, world)
    config, batches = spec.config, pipeline.batches
    run_dir = Path(config.resume) if config.resume else None
    if run_dir is None:
        run_dir = distributed.broadcast(world, runs.new_run_dir(config) if world.main else None)
    if world.main and not config.resume:
        runs.write_spec(run_dir, spec)
        fastpath.write_record(run_dir, fast)
        if pipeline.skipped:
            runs.write_skipped(run_dir, pipeline.skipped)
    # A resumed run's whitening comes with its weights from the checkpoint.
    whitened = 0 if config.resume else fit_whitening(model, batches["train"])
    optimizer = make_optimizer(transfer.parameter_groups(model, config), config)
    parameters = transfer.parameter_counts(model)
    scheduler, per_batch = make_scheduler(optimizer, config, len(batches["train"]))
    wrapped = distributed.wrap(model, world, config.sync_bn)  # every process: rank 0's weights
    run = session.Session(config, run_dir, wrapped, optimizer, scheduler, per_batch, batches,
                          world, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                          quiet, precision=fast.precision,
                          ema=make_ema(model, config.ema) if config.ema else None)
    start_epoch, tally = 1, None
    if config.resume:
        start_epoch, tally = run.restore(resume.load_newest(run_dir, "cpu"), device)
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
    test_loss, test_accuracy = run.finish()
    run.log(f"test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}) after {config.epochs} "
            f"epochs in {seconds:.1f} s; model saved in {run_dir}")
    return TrainResult(run_dir, runs.read_metrics(run_dir), test_loss, test_accuracy, seconds,
                       parameters, world.main)


# What may differ when a run is resumed: where it runs, and how long it goes on.
RESUME_OVERRIDES = {"epochs", "device", "workers", "data_loading", "data_dir", "checkpoint_every",
                    "keep", "resume", "tensorboard", "compile"}


def resume_config(run_dir: str, given: dict) -> TrainConfig:
    """The resumed run's config: its own config.json, with only harmless overrides."""
    changed = sorted(set(given) - RESUME_OVERRIDES)
    if changed:
        raise UserError(f"--resume continues a run as it was configured; "
                        f"--{changed[0].replace('_', '-')} cannot be changed (only "
                        f"{', '.join('--' + k.replace('_', '-') for k in sorted(RESUME_OVERRIDES - {'resume'}))}).")
    saved = runs.read_spec(run_dir).config
    return saved.updated({**given, "resume": str(run_dir), "augment": saved.augment})
