"""`cnnlab predict RUN IMAGE...`: top-k classes for image files, preprocessed as in training.

`cnnlab predict --pretrained MODEL IMAGE...` does the same with a pretrained ImageNet model and
its 1000 classes, fed the way its weights expect (training/pretrained.py), with no training at all.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..accel import fastpath
from ..runs import folder as runs
from ..data.images import decode_image
from ..errors import UserError
from ..accel.precision import FP32, Precision, recorded_precision
from ..accel.device import resolve_device
from ..tasks.tta import with_tta

BATCH = 64


def predict_files(run_dir: str | Path, files: list[str], top_k: int = 3,
                  device: str = "auto") -> dict:
    """Predictions for every readable file; unreadable ones are listed under "errors"."""
    if top_k <= 0:
        raise UserError(f"--top-k must be a positive whole number, not {top_k}.")
    device = resolve_device(device)
    run = runs.load_run(run_dir, device)
    # As training evaluated it: its number format and test-time augmentation.
    config, preprocess = run.spec.config, run.spec.preprocess
    _, precision = fastpath.for_inference(run.model, (preprocess.channels, *preprocess.size),
                                          max(1, min(BATCH, len(files))),
                                          recorded_precision(config.precision, device))
    model = with_tta(run.model, config.tta)
    return classify(model, preprocess, run.spec.classes, files, top_k, device, precision)


def predict_pretrained(name: str, files: list[str], top_k: int = 5, device: str = "auto",
                       weights_file=None) -> dict:
    """ImageNet classes for image files from a pretrained model, e.g. efficientnet_lite0."""
    from ..training.pretrained import imagenet_classes, pretrained_model
    if top_k <= 0:
        raise UserError(f"--top-k must be a positive whole number, not {top_k}.")
    device = resolve_device(device)
    model, record = pretrained_model(name, weights_file)
    return classify(model.to(device).eval(), record.preprocess, imagenet_classes(), files,
                    top_k, device)


def classify(model, preprocess, classes: list[str], files: list[str], top_k: int,
             device, precision: Precision = FP32) -> dict:
    """Top-k classes of `model` (in evaluation mode) for each readable file."""
    inputs, readable, errors = [], [], []
    for file in files:
        try:
            # Each file is resized on its own (sizes differ), then all go through in batches.
            inputs.append(preprocess(decode_image(file)))
            readable.append(str(file))
        except UserError as exc:
            errors.append({"file": str(file), "error": str(exc)})
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
