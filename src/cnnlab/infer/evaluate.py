"""`cnnlab evaluate RUN`: a finished run measured on one split of its data set, as its task
reports it (for classification: accuracy, per-class scores, the confusion matrix, top losses
and calibration, with a picture of each in the run folder)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..data import load_dataset
from ..data.pipeline import build_pipeline
from ..errors import UserError
from ..runs.split_record import recorded_part
from ..tasks import make_task, task_views
from .loaded import load_for_inference

SPLITS = ("test", "val", "train")


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto") -> dict:
    """Evaluate a finished run on one split of its data set; the task's pictures are written
    into the run folder."""
    return evaluate_with_details(run_dir, split, device)[0]


def evaluate_with_details(run_dir: str | Path, split: str = "test", device: str = "auto"):
    """(evaluate_run's report, what the task's report sections show besides it: for
    classification the top-loss mistakes with their images)."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}.")
    # Evaluated as training evaluated it: its number format and test-time augmentation.
    loaded = load_for_inference(run_dir, device, exact=True)
    run, config = loaded.run, loaded.run.spec.config
    splits = make_task(config.task, config).targets(load_dataset(config.dataset, config.data_dir))
    # the images the run itself held out, even if the folder changed since
    part, changes = recorded_part(run.path, splits, split)
    splits = dataclasses.replace(splits, **{split: part})
    pipeline = build_pipeline(splits, 0, None,
                              batch_size=config.batch_size, device=loaded.device,
                              loading=config.data_loading, workers=config.workers,
                              only=(split,), preprocess=run.spec.preprocess)
    report, details = task_views(config.task).evaluation_report(
        loaded.model, pipeline.batches[split], run.spec.classes, run.spec.preprocess, run.path,
        loaded.precision)
    return {"run_dir": str(run.path), "task": config.task, "split": split,
            "skipped_files": [file for file, _ in pipeline.skipped], **changes, **report}, details



def format_report(report: dict) -> str:
    """The evaluation as a reader wants it in a terminal, in its task's words."""
    return task_views(report["task"]).format_report(report)
