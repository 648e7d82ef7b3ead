"""The models a service answers with: loaded once from the same files as `cnnlab predict`
(a run folder's safetensors and config.json, or a pretrained record; never a pickle), then
asked for whole batches of preprocessed images and, one image at a time, for Grad-CAM.

Classification is served: the answers are `cnnlab predict --json`'s. A run of another task
is refused when the service starts, in one sentence.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..accel.device import resolve_device
from ..accel.precision import FP32, Precision
from ..data.transforms import Preprocess
from ..errors import UserError


@dataclass
class Served:
    name: str            # what /predict?model= and /models call it
    task: str
    model: nn.Module     # what answers (a run's through its test-time augmentation)
    plain: nn.Module     # the network itself, whose layers Grad-CAM hooks
    preprocess: Preprocess
    classes: list[str]
    device: torch.device
    precision: Precision

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "classes": self.classes,
                "input_size": [self.preprocess.channels, *self.preprocess.size],
                "preprocessing": self.preprocess.to_dict()}

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 C x H x W -> the model's C x H x W input, as training fed it."""
        return self.preprocess(image)

    def probabilities(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Class probabilities for each input, in one forward pass."""
        with torch.inference_mode(), self.precision.autocast():
            batch = torch.stack(inputs).to(self.device)
            return list(self.model(batch).float().softmax(dim=1).cpu())

    def top(self, probabilities: torch.Tensor, k: int) -> list[dict]:
        best = probabilities.topk(min(k, len(self.classes)))
        return [{"class": self.classes[i], "probability": p}
                for p, i in zip(best.values.tolist(), best.indices.tolist())]

    def gradcam(self, image: torch.Tensor) -> dict:
        """The top class's Grad-CAM heat map over the image as the model sees it, as PNG."""
        from ..figures import image_to_float, overlay
        from ..look.gradcam import default_layer, grad_cam
        shown = self.preprocess.fit_size(image)
        x = self.preprocess.normalise(shown).unsqueeze(0).to(self.device)
        layer = default_layer(self.plain, x)
        heat, index, probability, _ = grad_cam(self.plain, x, layer, None, self.classes)
        picture = overlay(image_to_float(shown.cpu()), heat).clip(0, 1)
        buffer = io.BytesIO()
        Image.fromarray(np.rint(picture * 255).astype(np.uint8)).save(buffer, "PNG")
        return {"class": self.classes[index], "probability": probability, "layer": layer,
                "png": buffer.getvalue()}


def _from_run(run_dir: str, device: str, max_batch: int) -> Served:
    from ..infer.loaded import load_for_inference
    from ..runs.folder import read_spec
    task = read_spec(run_dir).config.task
    if task != "classify":
        raise UserError(f"cnnlab serve answers classification runs, and {run_dir} trained "
                        f"--task {task}; use cnnlab predict for it.")
    loaded = load_for_inference(run_dir, device, max_batch)
    spec = loaded.run.spec
    return Served(Path(run_dir).resolve().name, task, loaded.model, loaded.run.model,
                  spec.preprocess, list(spec.classes), loaded.device, loaded.precision)


def _from_pretrained(name: str, device: str, weights_file=None) -> Served:
    from ..training.pretrained import imagenet_classes, pretrained_model
    device = resolve_device(device)
    model, record = pretrained_model(name, weights_file)
    model = model.to(device).eval()
    return Served(name, "classify", model, model, record.preprocess, imagenet_classes(),
                  device, FP32)


def load_models(runs: list[str], pretrained: list[str], device: str = "auto",
                max_batch: int = 16, weights_file=None) -> dict[str, Served]:
    """Every model named, by the name the service gives it (the first is the default)."""
    if not runs and not pretrained:
        raise UserError("give one or more run folders, or --pretrained MODEL.")
    if weights_file is not None and len(pretrained) != 1:
        raise UserError("--weights-file goes with exactly one --pretrained MODEL.")
    served = [_from_run(r, device, max_batch) for r in runs]
    served += [_from_pretrained(p, device, weights_file) for p in pretrained]
    names = [s.name for s in served]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two models would both be called {twice[0]}; serve each once.")
    return {s.name: s for s in served}


def warm_up(served: Served, max_batch: int) -> None:
    """Forward passes at the batch sizes the service will run, so the first requests do not
    pay for allocation and kernel selection; /ready says yes only after this."""
    c, h, w = served.preprocess.channels, *served.preprocess.size
    for size in sorted({1, max_batch}):
        served.probabilities([torch.zeros(c, h, w)] * size)
