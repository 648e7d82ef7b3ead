"""What classification shows once a model is trained: `cnnlab evaluate`'s report and pictures,
`cnnlab report`'s sections, and `cnnlab predict`'s top classes for image files.

The numbers come from engine.evaluate (through diagnostics.examine, which also keeps the top
losses); the pictures are drawn by classify_figures.py and saved in the run folder.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..accel.precision import FP32, Precision
from ..data.images import decode_image
from ..errors import UserError
from ..figures import save_figure
from ..webpage import data_url, figure, image_png, section, table
from .classify_figures import per_class_figure, plot_confusion, reliability_figure, top_losses_figure
from .diagnostics import Mistake, examine, reliability

# The pictures `cnnlab evaluate` writes in the run folder, with what each shows.
CONFUSION, PER_CLASS = "confusion.png", "per_class.png"
TOP_LOSSES, RELIABILITY = "top_losses.png", "reliability.png"
BATCH = 64  # images per forward pass in predict


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32, picture=None) -> tuple[dict, list[Mistake]]:
    """Accuracy, per-class precision/recall/F1, the confusion matrix, calibration and the top
    losses of `model` over `batches`, with a picture of each written into `run_dir`;
    `picture` turns a wrong input into the image drawn (a clip into a film strip)."""
    result, mistakes = examine(model, batches, preprocess, precision=precision)
    for mistake in mistakes if picture is not None else ():
        if mistake.image is not None:
            mistake.image = picture(mistake.image)
    labels, predicted = result.labels.numpy(), result.predictions.numpy()
    every_class = list(range(len(classes)))
    precisions, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=every_class, zero_division=0)
    matrix = confusion_matrix(labels, predicted, labels=every_class)
    per_class = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
                  "support": int(s)}
                 for name, p, r, f, s in zip(classes, precisions, recall, f1, support)]
    calibration = reliability(result.probabilities, result.labels)
    plot_confusion(matrix, classes, run_dir / CONFUSION)
    save_figure(per_class_figure(per_class), run_dir / PER_CLASS)
    save_figure(top_losses_figure(mistakes, classes), run_dir / TOP_LOSSES)
    save_figure(reliability_figure(calibration), run_dir / RELIABILITY)
    return {
        "images": len(labels), **result.metrics(), "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "confusion_png": str(run_dir / CONFUSION),
        "top_losses": [m.to_dict(classes) for m in mistakes],
        "calibration": calibration,
        "pictures": [str(run_dir / name) for name in
                     (CONFUSION, PER_CLASS, TOP_LOSSES, RELIABILITY)],
    }, mistakes


def format_report(report: dict) -> str:
    """The evaluation as a reader wants it in a terminal."""
    width = max(5, *(len(c["class"]) for c in report["per_class"]))
    top5 = f", top-5 {report['top5_accuracy']:.2%}" if "top5_accuracy" in report else ""
    lines = [f"{report['split']} accuracy {report['accuracy']:.2%}{top5} (loss "
             f"{report['loss']:.4f}) on {report['images']} images", "",
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


def report_sections(report: dict, mistakes: list[Mistake], classes: list[str],
                    run_dir: Path) -> list[str]:
    """The HTML report's test evaluation and top-loss cards."""
    rows = [(c["class"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
             str(c["support"])) for c in report["per_class"]]
    pictures = [(CONFUSION, "confusion matrix (rows: true, columns: predicted)"),
                (PER_CLASS, "precision, recall and F1 per class"),
                (RELIABILITY, f"reliability diagram, ECE {report['calibration']['ece']:.3f}")]
    body = (f"<p>Test accuracy <b>{report['accuracy']:.2%}</b> (loss {report['loss']:.4f}) on "
            f"{report['images']} images.</p>"
            + '<div class="figures">'
            + "".join(figure((run_dir / name).read_bytes(), caption) for name, caption in pictures)
            + "</div>" + table(("class", "precision", "recall", "F1", "support"), rows))
    return [section("Test evaluation", body, "evaluation"),
            section("Top losses", _loss_cards(mistakes, classes), "top-losses")]


def _loss_cards(mistakes: list[Mistake], classes: list[str]) -> str:
    """One card per mistake, highest loss first, with the numbers also as data attributes."""
    cards = []
    for rank, m in enumerate(mistakes, start=1):
        text = (f"true <b>{escape(classes[m.true])}</b>, predicted "
                f"<b>{escape(classes[m.predicted])}</b><br>"
                f"loss {m.loss:.3f}, p={m.confidence:.2f}")
        cards.append(f'<li data-rank="{rank}" data-index="{m.index}" data-loss="{m.loss:.6f}" '
                     f'data-true="{escape(classes[m.true])}" '
                     f'data-predicted="{escape(classes[m.predicted])}">'
                     f'<img src="{data_url(image_png(m.image))}" alt="test image {m.index}">'
                     f"<p>#{m.index}: {text}</p></li>")
    if not cards:
        return "<p>No test image was misclassified.</p>"
    return ("<p>The misclassified test images with the highest loss, the worst first: where the "
            "model was most confidently wrong.</p>"
            f'<ol class="losses">{"".join(cards)}</ol>')


def preprocessed_files(preprocess, files: list[str]) -> tuple[list, list[str], list[dict]]:
    """(each readable file preprocessed, their names, {"file", "error"} for the others). Each
    file is resized on its own (sizes differ); callers then batch them."""
    inputs, readable, errors = [], [], []
    for file in files:
        try:
            inputs.append(preprocess(decode_image(file)))
            readable.append(str(file))
        except UserError as exc:
            errors.append({"file": str(file), "error": str(exc)})
    return inputs, readable, errors


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, top_k: int = 3, **_) -> dict:
    """Top-k classes of `model` (in evaluation mode) for each readable file; unreadable ones
    are listed under "errors". (Other tasks' options, such as out_dir, do not apply.)"""
    if top_k <= 0:
        raise UserError(f"--top-k must be a positive whole number, not {top_k}.")
    inputs, readable, errors = preprocessed_files(preprocess, files)
    predictions = []
    for start in range(0, len(inputs), BATCH):
        with torch.inference_mode(), precision.autocast():
            batch = torch.stack(inputs[start:start + BATCH]).to(device)
            probabilities = model(batch).float().softmax(dim=1).cpu()
        for file, row in zip(readable[start:start + BATCH], probabilities):
            best = row.topk(min(top_k, len(classes)))
            predictions.append({"file": file, "top": [
                {"class": classes[i], "probability": p}
                for p, i in zip(best.values.tolist(), best.indices.tolist())]})
    return {"predictions": predictions, "errors": errors}


def format_predictions(result: dict) -> str:
    lines = []
    for item in result["predictions"]:
        tops = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in item["top"])
        lines.append(f"{item['file']}: {tops}")
    return "\n".join(lines)
