"""What `cnnlab export` exports: a trained run's model as cnnlab evaluates it (through its
test-time augmentation), or a pretrained ImageNet classifier, with how it is fed.

Export covers the tasks whose model is one tensor in, one tensor out, at the size it trained
at. The others are refused in one sentence that says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..data.transforms import Preprocess
from ..errors import UserError
from .preprocessing import OUTPUTS

# Tasks whose model is not a tensor-to-tensor function of a fixed-size image.
REFUSED = {
    "detect": "torchvision's detectors take a list of images of any size and answer with a "
              "list of dictionaries whose length depends on the image, which a traced or "
              "exported graph of fixed shapes does not express",
    "instance": "Mask R-CNN takes a list of images of any size and answers with a list of "
                "dictionaries whose length depends on the image, which a traced or exported "
                "graph of fixed shapes does not express",
    "gan": "a GAN run's model draws new images from noise rather than answering for an image, "
           "so there is no image input to export or to check",
    "superres": "a super-resolution model takes the luminance of an image of any size, and "
                "its colour is upscaled outside the network, so a fixed-size file would not "
                "reproduce `cnnlab predict`",
}


@dataclass
class Subject:
    name: str                  # the model's registered name
    task: str
    model: nn.Module           # in evaluation mode, on the CPU, fp32
    preprocess: Preprocess
    classes: list[str]
    source: str                # for messages and the JSON: "run RUN" or "pretrained NAME"
    run_dir: Path | None       # None for a pretrained model
    dataset: str | None        # where the run's test images come from
    data_dir: str = "data"


def from_run(run_dir: str | Path) -> Subject:
    """The run's model as cnnlab evaluates it: fp32 on the CPU (the exported file is the
    portable form; a runtime chooses its own device), through the run's --tta."""
    from ..runs.folder import load_run, read_spec
    from ..tasks.tta import with_tta
    config = read_spec(run_dir).config  # reads config.json only: refuse before loading weights
    _refuse(config.task, f"{run_dir} is a {config.task} run")
    run = load_run(run_dir, "cpu")
    return Subject(config.model, config.task, with_tta(run.model, config.tta).eval(),
                   run.spec.preprocess, run.spec.classes, f"run {run.path}", run.path,
                   config.dataset, config.data_dir)


def from_pretrained(name: str, weights_file: str | None = None) -> Subject:
    """A pretrained ImageNet classifier with its 1000 classes, fed as its weights expect."""
    from ..training.pretrained import imagenet_classes, pretrained_model
    model, record = pretrained_model(name, weights_file)
    return Subject(name, "classify", model.eval(), record.preprocess, imagenet_classes(),
                   f"pretrained {name}", None, None)


def _refuse(task: str, what: str) -> None:
    if task in REFUSED:
        raise UserError(f"{what}, and export does not cover it: {REFUSED[task]}.")
    if task not in OUTPUTS:  # a task added since: say so rather than export it half-right
        raise UserError(f"{what}, and export does not know that task's outputs yet.")
