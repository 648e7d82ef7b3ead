"""`cnnlab predict RUN IMAGE...`: top-k classes for image files, preprocessed as in training."""
from __future__ import annotations

from pathlib import Path

import torch

from . import runs
from .data.images import decode_image
from .errors import UserError
from .runtime import resolve_device

BATCH = 64


def predict_files(run_dir: str | Path, files: list[str], top_k: int = 3,
                  device: str = "auto") -> dict:
    """Predictions for every readable file; unreadable ones are listed under "errors"."""
    if top_k <= 0:
        raise UserError(f"--top-k must be a positive whole number, not {top_k}.")
    device = resolve_device(device)
    run = runs.load_run(run_dir, device)
    classes = run.spec.classes
    inputs, readable, errors = [], [], []
    for file in files:
        try:
            # Each file is resized on its own (sizes differ), then all go through in batches.
            inputs.append(run.spec.preprocess(decode_image(file)))
            readable.append(str(file))
        except UserError as exc:
            errors.append({"file": str(file), "error": str(exc)})
    predictions = []
    for start in range(0, len(inputs), BATCH):
        with torch.no_grad():
            batch = torch.stack(inputs[start:start + BATCH]).to(device)
            probabilities = run.model(batch).softmax(dim=1).cpu()
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
