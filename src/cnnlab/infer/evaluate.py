"""`cnnlab evaluate RUN`: accuracy, per-class precision/recall/F1, the confusion matrix, the
top losses and calibration (tasks/diagnostics.py), with a picture of each in the run folder."""
from __future__ import annotations

from pathlib import Path

from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..accel import fastpath
from ..runs import folder as runs
from ..data import load_dataset
from ..data.pipeline import build_pipeline
from ..tasks.diagnostics import examine, reliability
from ..errors import UserError
from ..tasks.classify_figures import per_class_figure, reliability_figure, top_losses_figure
from ..figures import save_figure
from ..accel.precision import recorded_precision
from ..accel.device import resolve_device
from ..tasks.tta import with_tta
from ..training.curves import plot_confusion

SPLITS = ("test", "val", "train")


def evaluate_run(run_dir: str | Path, split: str = "test", device: str = "auto") -> dict:
    """Evaluate a finished run on one split of its data set; also writes RUN/confusion.png,
    RUN/per_class.png, RUN/top_losses.png and RUN/reliability.png."""
    return evaluate_with_mistakes(run_dir, split, device)[0]


def evaluate_with_mistakes(run_dir: str | Path, split: str = "test", device: str = "auto"):
    """(evaluate_run's report, the top-loss Mistakes with their images, for look/report.py)."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}.")
    device = resolve_device(device)
    run = runs.load_run(run_dir, device)
    config, classes = run.spec.config, run.spec.classes
    pipeline = build_pipeline(load_dataset(config.dataset, config.data_dir), 0, None,
                              batch_size=config.batch_size, device=device,
                              loading=config.data_loading, workers=config.workers,
                              only=(split,), preprocess=run.spec.preprocess)
    # Evaluated as training evaluated it: its number format and test-time augmentation.
    preprocess = run.spec.preprocess
    _, number_format = fastpath.for_inference(run.model, (preprocess.channels, *preprocess.size),
                                              config.batch_size,
                                              recorded_precision(config.precision, device),
                                              exact=True)
    model = with_tta(run.model, config.tta)
    result, mistakes = examine(model, pipeline.batches[split], preprocess,
                               precision=number_format)
    labels, predicted = result.labels.numpy(), result.predictions.numpy()
    every_class = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=every_class, zero_division=0)
    matrix = confusion_matrix(labels, predicted, labels=every_class)
    plot_confusion(matrix, classes, run.path / runs.CONFUSION)
    per_class = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
                  "support": int(s)}
                 for name, p, r, f, s in zip(classes, precision, recall, f1, support)]
    calibration = reliability(result.probabilities, result.labels)
    save_figure(per_class_figure(per_class), run.path / runs.PER_CLASS)
    save_figure(top_losses_figure(mistakes, classes), run.path / runs.TOP_LOSSES)
    save_figure(reliability_figure(calibration), run.path / runs.RELIABILITY)
    return {
        "run_dir": str(run.path), "split": split, "images": len(labels),
        "skipped_files": [file for file, _ in pipeline.skipped],
        "accuracy": result.accuracy, "loss": result.loss,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "confusion_png": str(run.path / runs.CONFUSION),
        "top_losses": [m.to_dict(classes) for m in mistakes],
        "calibration": calibration,
        "pictures": [str(run.path / name) for name in
                     (runs.CONFUSION, runs.PER_CLASS, runs.TOP_LOSSES, runs.RELIABILITY)],
    }, mistakes


def format_report(report: dict) -> str:
    """The evaluation as a reader wants it in a terminal."""
    width = max(5, *(len(c["class"]) for c in report["per_class"]))
    lines = [f"{report['split']} accuracy {report['accuracy']:.2%} (loss {report['loss']:.4f}) "
             f"on {report['images']} images", "",
             f"{'class':>{width}}  precision  recall     f1  support"]
    lines += [f"{c['class']:>{width}}  {c['precision']:9.3f}  {c['recall']:6.3f}  {c['f1']:5.3f}  "
              f"{c['support']:7d}" for c in report["per_class"]]
    names = [c["class"] for c in report["per_class"]]
    cell = max(4, width, *(len(str(v)) for row in report["confusion_matrix"] for v in row))
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * (width + 1) + "".join(f"{n:>{cell + 1}}" for n in names)]
    lines += [f"{name:>{width}} " + "".join(f"{v:>{cell + 1}}" for v in row)
              for name, row in zip(names, report["confusion_matrix"])]
    lines.append(f"\nexpected calibration error {report['calibration']['ece']:.3f}; "
                 f"{len(report['top_losses'])} top losses, the worst: " + (", ".join(
                     f"#{m['index']} {m['true']} as {m['predicted']} (loss {m['loss']:.2f})"
                     for m in report["top_losses"][:3]) or "none"))
    lines.append(f"pictures: {', '.join(report['pictures'])}")
    return "\n".join(lines)
