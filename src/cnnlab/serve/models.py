"""The models a service answers with: loaded once from the same files as `cnnlab predict`
(a run folder's safetensors and config.json, or a pretrained record; never a pickle), then
asked for whole batches of preprocessed images and, for a classifier, one image at a time
for Grad-CAM.

Every task answers `cnnlab predict --json`'s way; what each one does with an upload, a batch
and an output is its family in answers.py.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..accel.device import resolve_device
from ..accel.precision import FP32, Precision
from ..data.transforms import Preprocess
from ..errors import UserError
from .answers import FAMILIES, Answers


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
    answers: Answers = field(default_factory=Answers)  # what the task answers, and how
    extra: dict = field(default_factory=dict)  # what a task needs from its run: the clip's
    # frames (video), the scale (superres), the verification threshold (embed)

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "classes": self.classes,
                "input_size": list(self.answers.example(self).shape),
                "preprocessing": self.preprocess.to_dict(),
                "needs_image": self.answers.needs_image, "gradcam": self.task == "classify"}

    def forward(self, inputs: list[torch.Tensor]) -> list:
        """The model's output for each input, in as few forward passes as it allows."""
        return self.answers.forward(self, inputs)

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
    if task not in FAMILIES:
        raise UserError(f"cnnlab serve does not answer --task {task} yet ({run_dir}); use "
                        "cnnlab predict for it.")
    loaded = load_for_inference(run_dir, device, max_batch)
    spec = loaded.run.spec
    return Served(Path(run_dir).resolve().name, task, loaded.model, loaded.run.model,
                  spec.preprocess, list(spec.classes), loaded.device, loaded.precision,
                  FAMILIES[task](), _extra(task, loaded))


def _extra(task: str, loaded) -> dict:
    """What a task's answers need from its run besides the model."""
    if task == "video":
        from ..tasks.video_report import clip_frames
        return {"frames": clip_frames(loaded.run.spec.config.dataset)}
    if task == "superres":
        from ..tasks.superres_report import scale_of
        return {"scale": scale_of(loaded.model)}
    if task == "embed":
        from ..runs.folder import read_metrics
        return {"threshold": next((m["val_threshold"] for m in reversed(
            read_metrics(loaded.run.path)) if "val_threshold" in m), None)}
    return {}


def _from_pretrained(name: str, device: str, weights_file=None) -> Served:
    from ..training.pretrained import imagenet_classes, pretrained_model
    device = resolve_device(device)
    model, record = pretrained_model(name, weights_file)
    # channels_last, untimed: measured on 2 shared CPU cores it took a quarter to a third off
    # efficientnet_lite0's CPU time per image at batches of 1 to 16, and timing the layouts
    # at start-up (as a run's model is, infer/loaded.py) took minutes on a busy machine.
    model = model.to(device, memory_format=torch.channels_last).eval()
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
    for size in sorted({1, max_batch}):
        served.forward([served.answers.example(served)] * size)
