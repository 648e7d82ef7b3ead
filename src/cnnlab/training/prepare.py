"""`prepare(config)`: the data and the freshly initialised model a config asks for.

The one place a run's input is decided: the data set and its pipeline (this process's share
under torchrun, --limit-batches), the image size and stem the model is built for, and the
weights it starts from (random, --weights, or a pretrained ImageNet model for transfer).
"""
from __future__ import annotations

import dataclasses

import torch

from ..accel import distributed
from ..config.train_config import TrainConfig
from ..data import load_dataset
from ..data.catalog import typical_size
from ..data.pipeline import build_pipeline
from ..errors import UserError
from ..logs import LOGGER
from ..models import list_models, model_info, plan_input
from ..models.weights import load_pretrained, pretrained_options
from ..runs import folder as runs
from ..tasks import make_task
from . import transfer
from .pretrained import pretrained_record


def prepare(config: TrainConfig, device: torch.device, world: distributed.World | None = None):
    """The run's spec (config as resolved), batches and freshly initialised model: a
    registered model from scratch or from --weights/--weights-file, or, with --pretrained, an
    ImageNet model with a new head fed the input its weights were trained on (size, resize,
    crop, normalisation). For a task other than classification --pretrained names the
    backbone of --model instead (a segmenter on ImageNet features), whose images keep their
    size and take the pretrained network's normalisation."""
    # An unknown model or pretrained name fails before any data is loaded.
    record = pretrained_record(config.pretrained) if config.pretrained is not None else None
    as_backbone = record is not None and config.task != "classify"
    info = model_info(config.model) if record is None or as_backbone else None
    if info is not None and info.task != config.task:
        raise UserError(f"model {info.name} is made for --task {info.task}, not {config.task}; "
                        f"the {config.task} models: "
                        f"{', '.join(n for n in list_models() if model_info(n).task == config.task)}.")
    if info is not None:  # a wrong --model-kwargs is said before any data is loaded
        info.check_options(config.model_kwargs)
    if record is not None and not as_backbone:
        config = dataclasses.replace(config, model=record.name)
    # What the task learns from: class labels, or masks in place of them for segmentation.
    task = make_task(config.task, config)
    splits = task.targets(load_dataset(config.dataset, config.data_dir, config.download))
    if config.augment == "auto":
        config = dataclasses.replace(config, augment=splits.augment)
    if record is None or as_backbone:
        (channels, height, width), kwargs = _model_args(config, info, splits, task,
                                                        record.name if as_backbone else None)
        # the pretrained network's normalisation, unless the model normalises inside (the
        # detectors: torchvision's transform, given the backbone's statistics)
        inside = record is not None and info.mean == (0.0,) * channels and info.std == (
            1.0,) * channels
        preprocess = None if record is None or inside else dataclasses.replace(
            record.preprocess, channels=channels, size=(height, width), resize=None)
        if preprocess is None and hasattr(task, "preprocess"):  # a scale the task fixes (a GAN's [-1, 1])
            preprocess = task.preprocess(channels, (height, width))
        pipeline = make_pipeline(config, splits, channels, (height, width), device, world,
                                 preprocess=preprocess)
    else:
        channels, kwargs = record.preprocess.channels, {**record.options, **config.model_kwargs}
        pipeline = make_pipeline(config, splits, channels, record.preprocess.size, device, world,
                                 preprocess=record.preprocess)
    spec = runs.RunSpec(config, splits.classes, {
        "num_classes": len(splits.classes), "in_channels": channels,
        "kwargs": kwargs}, pipeline.preprocess)
    if as_backbone:
        model = transfer.start_backbone(spec.build_model(), config)
    elif record is not None:
        model = transfer.build(config, len(splits.classes))
    else:
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
    for batches in pipeline.batches.values():
        batches.limit = config.limit_batches
    return pipeline


def _model_args(config: TrainConfig, info, splits, task, backbone: str | None = None):
    """The model's input size (C, H, W) and options: --model-kwargs, --norm, the layout that
    torchvision's weights need, the pretrained `backbone`, and the stem that suits the images
    (models/registry.plan_input: small images train ImageNet architectures through their
    small-input stem, not at 224x224)."""
    image_size = typical_size(splits.train)
    # a task's own choices from the data (a detector's sizes and anchors) come first
    chosen = getattr(task, "model_options", None)
    chosen = chosen(info, splits, image_size) if chosen else {}
    if set(chosen) - set(config.model_kwargs):
        LOGGER.info("chosen from the data (--model-kwargs overrides): " + ", ".join(
            f"{k}={v}" for k, v in chosen.items() if k not in config.model_kwargs))
    kwargs = {**chosen, **pretrained_options(info, config.weights), **config.model_kwargs}
    if config.norm is not None:
        kwargs["norm"] = config.norm
    if backbone is not None:
        if kwargs.get("backbone", backbone) != backbone:
            raise UserError(f"--pretrained {backbone} is the backbone; drop "
                            f"backbone={kwargs['backbone']} from --model-kwargs.")
        kwargs["backbone"] = backbone
    pretrained = (config.weights is not None or config.weights_file is not None
                  or backbone is not None)
    # a task that sizes the input itself (a GAN: the data's channels at its generator's side)
    own_plan = getattr(task, "plan_input", None)
    (channels, height, width), kwargs = (own_plan(info, splits, image_size, kwargs) if own_plan
                                         else plan_input(info, image_size, kwargs, pretrained))
    with torch.device("meta"):  # a bad option fails now, not after the data is resized for it
        info.build(len(splits.classes), channels, **kwargs)
    return (channels, height, width), kwargs
