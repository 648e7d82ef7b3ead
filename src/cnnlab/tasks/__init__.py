"""Image tasks: what each one means by a target, a loss, a metric, a prediction and a picture.

A task is two modules here, one per side of a trained model:
- what training needs, the engine's interface (engine/task.py): a class with `name`,
  `headline`, `loss`, `batch_sums`, `epoch_metrics`, `accumulator` and `from_config(config)`,
  plus `targets(splits)`, which training/prepare.py and evaluate use to give a data set the
  targets the task learns from (class labels, or masks in their place);
- what `cnnlab evaluate`, `report` and `predict` show: a module with `evaluation_report`,
  `format_report`, `report_sections`, `predict` and `format_predictions`, imported only by
  those commands (training never loads scikit-learn's metrics or the figures).
The table below is the one list of tasks: `cnnlab train --task` offers these names, and a
run's config.json records which one it trained.

    classify    one class per image (classify.py, classify_report.py; diagnostics.py,
                classify_figures.py, tta.py)
    segment     a class for every pixel (segment.py, segment_report.py)
    detect      a box and a class for every object (detect.py, detect_report.py)
    instance    and a mask for every object: Mask R-CNN (the same two modules)
    superres    the image `scale` times larger: SRCNN, ESPCN (superres.py, superres_report.py;
                image_quality.py)
    gan         new images like the data set's: DCGAN (gan.py, gan_report.py; gan_judge.py,
                gan_samples.py, frechet.py)
    video       one class per clip: C3D, video ResNets (video.py, video_report.py;
                video_figures.py)
    embed       an embedding per image, ArcFace or triplet loss, verification on held-out
                classes (embed.py, embed_report.py; metric_losses.py)
    caption     a sentence per image: show-and-tell, show-attend-tell, BLEU with greedy and
                beam search (caption.py, caption_report.py; vocabulary.py)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import unknown_name


@dataclass(frozen=True)
class TaskEntry:
    trains: str  # "module:Class" in this package: what the engine is given
    shows: str   # module in this package: what evaluate, report and predict show
    about: str   # one line for `cnnlab train --help`


TASKS = {
    "classify": TaskEntry("classify:Classify", "classify_report", "one class per image"),
    "segment": TaskEntry("segment:Segment", "segment_report", "a class for every pixel"),
    "detect": TaskEntry("detect:Detect", "detect_report", "a box and a class for every object"),
    "instance": TaskEntry("detect:Instance", "detect_report",
                          "a box, a class and a mask for every object"),
    "superres": TaskEntry("superres:SuperRes", "superres_report",
                          "the image --scale times larger, sharper than bicubic"),
    "gan": TaskEntry("gan:Gan", "gan_report", "new images like the data set's"),
    "video": TaskEntry("video:Video", "video_report", "one class per clip of frames"),
    "embed": TaskEntry("embed:Embed", "embed_report",
                       "an embedding per image, verified on held-out identities"),
    "caption": TaskEntry("caption:Caption", "caption_report", "a sentence per image"),
}


def _entry(name: str) -> TaskEntry:
    if name not in TASKS:
        raise unknown_name("task", name, TASKS)
    return TASKS[name]


def make_task(name: str, config=None):
    """The task `name` as the engine uses it, set up from `config` (a TrainConfig; None: the
    task's defaults)."""
    module, class_name = _entry(name).trains.split(":")
    task_class = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)
    return task_class.from_config(config) if config is not None else task_class()


def task_views(name: str):
    """The module that shows the task `name`'s results to a user."""
    return importlib.import_module(f"{__name__}.{_entry(name).shows}")
