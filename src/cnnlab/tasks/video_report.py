"""What `cnnlab evaluate`, `report` and `predict` show for --task video: classification's
report (classify_report.py), each top-loss clip shown as its frames side by side; predict
reads video files (or folders of frames) as clips like the run's (data/video_files.py); the
report looks inside 3-D convolutions its own way (video_figures.py)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..accel.precision import FP32, Precision
from ..data.video_files import CLIP_FRAMES, clip_options, read_any_clip
from ..errors import UserError
from . import classify_report
from .classify_report import format_predictions, format_report, report_sections
from .diagnostics import Mistake

__all__ = ["evaluation_report", "format_report", "report_sections", "predict",
           "format_predictions", "inside_sections"]


def filmstrip(clip: torch.Tensor) -> torch.Tensor:
    """uint8 T x C x H x W -> C x H x (T * W): the frames left to right."""
    frames, channels, height, width = clip.shape
    return clip.permute(1, 2, 0, 3).reshape(channels, height, frames * width)


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, list[Mistake]]:
    """classify_report.evaluation_report's numbers and pictures, over clips (each wrong
    clip drawn as a film strip of its frames)."""
    report, mistakes = classify_report.evaluation_report(
        model, batches, classes, preprocess, run_dir, precision,
        picture=lambda clip: filmstrip(clip) if clip.dim() == 4 else clip)
    return {**report, "clips": report["images"]}, mistakes


def inside_sections(model, clip: torch.Tensor, preprocess, target, classes: list[str]):
    """The report's filters and feature maps, drawn over time (video_figures.py)."""
    from .video_figures import inside_sections as draw

    return draw(model, clip, preprocess, f"the first test clip (class {classes[int(target)]})")


def clip_frames(dataset: str) -> int:
    """The number of frames a run's clips had: videos:PATH?frames=N says so, every other
    set of clips (moving-shapes, ucf101, hmdb51) has CLIP_FRAMES."""
    kind, colon, argument = dataset.partition(":")
    return clip_options(argument)[1] if colon and kind == "videos" else CLIP_FRAMES


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, top_k: int = 3, dataset: str = "", **_) -> dict:
    """Top-k classes for each video file (or folder of frame images), read as a clip of as
    many frames as the run trained on, spread over the whole video; unreadable ones are
    listed under "errors"."""
    if top_k <= 0:
        raise UserError(f"--top-k must be a positive whole number, not {top_k}.")
    frames = clip_frames(dataset)
    predictions, errors = [], []
    for file in files:
        try:
            clip = preprocess(read_any_clip(file, frames, tuple(preprocess.size)))
        except UserError as exc:
            errors.append({"file": str(file), "error": str(exc)})
            continue
        with torch.inference_mode(), precision.autocast():
            probabilities = model(clip[None].to(device)).float().softmax(dim=1)[0].cpu()
        best = probabilities.topk(min(top_k, len(classes)))
        predictions.append({"file": str(file), "frames": frames, "top": [
            {"class": classes[i], "probability": p}
            for p, i in zip(best.values.tolist(), best.indices.tolist())]})
    return {"predictions": predictions, "errors": errors}
