"""`cnnlab predict RUN IMAGE...`: the run's task answers for image files, preprocessed as in
training (for classification: the top-k classes).

`cnnlab predict --pretrained MODEL IMAGE...` does the same with a pretrained ImageNet model and
its 1000 classes, fed the way its weights expect (training/pretrained.py), with no training at all.
"""
from __future__ import annotations

from pathlib import Path

from ..accel.device import resolve_device
from ..accel.precision import FP32
from ..errors import UserError
from ..runs import folder as runs
from ..tasks import task_views
from ..tasks.classify import Classify
from ..tasks.classify_report import predict
from .loaded import load_for_inference

BATCH = 64  # the batch the fast path is timed at, for many files


def predict_files(run_dir: str | Path, files: list[str], top_k: int = 3,
                  device: str = "auto", out_dir: str | None = None,
                  score_threshold: float = 0.5, output_format: str = "cnnlab",
                  count: int | None = None) -> dict:
    """Predictions for every readable file; unreadable ones are listed under "errors".
    `top_k` is classification's, `score_threshold` and `output_format` "coco" detection's;
    `out_dir` is where tasks that answer with pictures (masks, boxes) write them. With no
    files, a task that makes images (a GAN) draws `count` new ones; the others need files."""
    if not files and not getattr(task_views(runs.read_spec(run_dir).config.task),
                                 "GENERATES", False):
        raise UserError("give one or more image files after the run folder, or --pretrained MODEL.")
    if count is not None and count < 1:
        raise UserError(f"--count must be a positive whole number, not {count}.")
    loaded = load_for_inference(run_dir, device, max(1, min(BATCH, len(files))))
    spec = loaded.run.spec
    views = task_views(spec.config.task)
    if output_format not in getattr(views, "FORMATS", ("cnnlab",)):
        raise UserError(f"--format {output_format} is for detect and instance runs; "
                        f"{run_dir} is a {spec.config.task} run.")
    return {"task": spec.config.task, **views.predict(
        loaded.model, spec.preprocess, spec.classes, files, loaded.device, loaded.precision,
        top_k=top_k, out_dir=out_dir, score_threshold=score_threshold,
        output_format=output_format, dataset=spec.config.dataset,
        **({"count": count} if count is not None else {}))}


def predict_pretrained(name: str, files: list[str], top_k: int = 5, device: str = "auto",
                       weights_file=None) -> dict:
    """ImageNet classes for image files from a pretrained model, e.g. efficientnet_lite0."""
    from ..training.pretrained import imagenet_classes, pretrained_model
    device = resolve_device(device)
    model, record = pretrained_model(name, weights_file)
    return {"task": Classify.name, **predict(
        model.to(device).eval(), record.preprocess, imagenet_classes(), files, device, FP32, top_k)}


def format_predictions(result: dict) -> str:
    return task_views(result["task"]).format_predictions(result)
