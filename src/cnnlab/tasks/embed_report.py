"""What --task embed shows once a model is trained: `cnnlab evaluate`'s verification and
identification numbers with an ROC curve, `cnnlab report`'s section, `cnnlab predict`'s
embeddings, and `cnnlab verify`'s answer for two image files.

The numbers come from the run's own accumulator, embed.Collect, as training's test pass got
them: embed.verification (its own ROC, here checked against scikit-learn's: the AUC below is
sklearn.metrics.roc_auc_score over the same pairs) and, on lfw-pairs, LFW's 10-fold protocol.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ..accel.precision import FP32, Precision
from ..errors import UserError
from ..figures import save_figure
from ..webpage import figure, section
from .classify_report import preprocessed_files
from .embed import FARS, Collect, far_key, pairs, roc

ROC_PNG = "roc.png"
BATCH = 64


def embed_all(model, batches, precision: Precision = FP32):
    """(embeddings, labels) of every image in `batches`, on the CPU."""
    embeddings, labels = [], []
    model.eval()
    with torch.inference_mode():
        for inputs, targets in batches:
            with precision.autocast():
                embeddings.append(model(inputs).float().cpu())
            labels.append(targets.cpu())
    return torch.cat(embeddings), torch.cat(labels)


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    ax.plot(np.clip(fpr, 1e-5, 1), tpr)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"verification ROC, AUC {auc:.4f}")
    ax.grid(alpha=0.3)
    return fig


def run_accumulator(run_dir: Path) -> Collect:
    """The run's own accumulator (embed.Collect), from the training values in its config.json:
    on lfw-pairs it adds LFW's 10-fold protocol to the numbers, as training's test did."""
    try:
        train = json.loads((Path(run_dir) / "config.json").read_text()).get("train", {})
    except (OSError, ValueError):  # evaluate has loaded this run already: not expected
        train = {}
    return Collect.for_run(train)


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, None]:
    """Verification over image pairs (cosine similarity) and gallery identification; on
    LFW's pairs also the 10-fold accuracy (`pairs_accuracy` and its std over the folds)."""
    embeddings, labels = embed_all(model, batches, precision)
    collect = run_accumulator(run_dir)
    collect.add(None, embeddings, labels)
    numbers = collect.result().metrics()
    i, j = pairs(len(labels))
    e, y = embeddings.numpy().astype(np.float64), labels.numpy()
    scores, same = (e[i] * e[j]).sum(1), y[i] == y[j]
    fpr, tpr, _ = roc(scores, same)
    save_figure(roc_figure(fpr, tpr, numbers["auc"]), run_dir / ROC_PNG)
    return {"images": len(labels), "identities": int(len(np.unique(y))),
            **{k: v for k, v in numbers.items() if k != "images"},
            "sklearn_auc": float(roc_auc_score(same, scores)) if 0 < same.sum() < len(same)
            else float("nan"),
            "pictures": [str(run_dir / ROC_PNG)]}, None


def format_report(report: dict) -> str:
    tars = ", ".join(f"TAR {report[far_key(f)]:.2%} at FAR {f:g}" for f in FARS)
    return "\n".join([
        f"{report['split']}: {report['images']} images of {report['identities']} identities, "
        f"{int(report['pairs']):,} pairs",
        f"verification AUC {report['auc']:.4f}; {tars}",
        f"best threshold: cosine similarity >= {report['threshold']:.4f} is the same identity "
        f"(accuracy {report['verification_accuracy']:.2%})",
        f"identification top-1 {report['top1']:.2%} (gallery: one image per identity)",
        *([f"LFW's 10-fold protocol: accuracy {report['pairs_accuracy']:.2%} "
           f"+- {report['pairs_accuracy_std']:.2%} over {int(report['pairs_folds'])} folds "
           "(each fold's threshold chosen on the others)"] if "pairs_accuracy" in report else []),
        f"pictures: {', '.join(report['pictures'])}"])


def report_sections(report: dict, details, classes: list[str], run_dir: Path) -> list[str]:
    body = (f"<p>{format_report(report)}</p>".replace("\n", "<br>")
            + figure((run_dir / ROC_PNG).read_bytes(), "verification ROC"))
    return [section("Test verification", body, "evaluation")]


def embed_files(model, preprocess, files: list[str], device, precision: Precision = FP32):
    """(embeddings of the readable files, their names, errors)."""
    inputs, readable, errors = preprocessed_files(preprocess, files)
    out = []
    for start in range(0, len(inputs), BATCH):
        with torch.inference_mode(), precision.autocast():
            out.append(model(torch.stack(inputs[start:start + BATCH]).to(device)).float().cpu())
    return (torch.cat(out) if out else torch.zeros(0)), readable, errors


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, **_) -> dict:
    """The embedding of each readable file."""
    embeddings, readable, errors = embed_files(model, preprocess, files, device, precision)
    return {"predictions": [{"file": f, "embedding": e.tolist()}
                            for f, e in zip(readable, embeddings)], "errors": errors}


def format_predictions(result: dict) -> str:
    return "\n".join(f"{p['file']}: embedding of {len(p['embedding'])} numbers, first "
                     + ", ".join(f"{v:.3f}" for v in p["embedding"][:4])
                     for p in result["predictions"])


def verify_pair(model, preprocess, files: list[str], device, threshold: float,
                precision: Precision = FP32) -> dict:
    """Are the two image `files` the same identity? Their cosine similarity (and the distance
    between the unit embeddings, sqrt(2 - 2 cos)) against `threshold`, the similarity of
    best accuracy on the run's validation pairs."""
    embeddings, readable, errors = embed_files(model, preprocess, files, device, precision)
    if errors:
        raise UserError(errors[0]["error"])
    similarity = float((embeddings[0] * embeddings[1]).sum())
    return {"files": readable, "similarity": similarity,
            "distance": float(np.sqrt(max(2.0 - 2.0 * similarity, 0.0))),
            "threshold": threshold, "same": similarity >= threshold}


def format_verify(result: dict) -> str:
    verdict = "same identity" if result["same"] else "different identities"
    return (f"{verdict}: cosine similarity {result['similarity']:.4f} "
            f"{'>=' if result['same'] else '<'} threshold {result['threshold']:.4f} "
            f"(distance {result['distance']:.4f})")
