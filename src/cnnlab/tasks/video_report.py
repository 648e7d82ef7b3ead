"""What `cnnlab evaluate`, `report` and `predict` show for --task video: classification's
report (classify_report.py), each top-loss clip shown as its frames side by side."""
from __future__ import annotations

from pathlib import Path

import torch

from ..accel.precision import FP32, Precision
from ..errors import UserError
from . import classify_report
from .classify_report import format_report, report_sections
from .diagnostics import Mistake

__all__ = ["evaluation_report", "format_report", "report_sections", "predict",
           "format_predictions"]


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


def predict(model, preprocess, classes: list[str], files: list[str], device, **_) -> dict:
    raise UserError("predict does not read video files yet; evaluate a video run with "
                    "`cnnlab evaluate RUN` instead.")


def format_predictions(result: dict) -> str:
    return ""
