"""The run folder: everything needed to rebuild, inspect and reuse a training run.

    RUN/config.json             training config, model arguments, classes, preprocessing
    RUN/metrics.jsonl           one JSON line per epoch
    RUN/checkpoints/            resumable states, the newest --keep (see resume.py)
    RUN/model.safetensors       final weights only
    RUN/curves.png              loss and the task's headline metric per epoch
    RUN/<the task's pictures>   from `cnnlab evaluate` (classification: confusion.png,
                                per_class.png, top_losses.png, reliability.png)
    RUN/report.html             everything above in one page (`cnnlab report`)
    RUN/tensorboard/            event files for TensorBoard (`cnnlab train --tensorboard`)
    RUN/skipped.txt             files of the data set that could not be used, with reasons
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..atomic import atomic_write_text
from .checkpoint import load_weights
from .lock import LOCK
from .resume import checkpoints
from ..config.train_config import TrainConfig
from ..data.transforms import Preprocess
from ..errors import UserError
from ..logs import LOGGER
from ..models import create_model
from ..models.heads import add_hidden_layers

CONFIG, WEIGHTS = "config.json", "model.safetensors"
METRICS, CURVES = "metrics.jsonl", "curves.png"  # a task's own pictures are named in tasks/
REPORT, TENSORBOARD = "report.html", "tensorboard"
SKIPPED = "skipped.txt"


def refuse_taken_out(config: TrainConfig) -> None:
    """--out naming a folder that holds a run, or files that are not cnnlab's, is refused
    (checked first, and again when the folder is made). A run that stopped before its first
    checkpoint (a nan, a full disk) holds nothing to keep: its folder is used again."""
    if not config.out:
        return
    path = Path(config.out)
    if (path / CONFIG).exists():
        if not never_saved(path):
            raise UserError(f"{path} already holds a run; choose another --out or remove it.")
    elif path.is_dir() and any(p.name != LOCK for p in path.iterdir()):
        raise UserError(f"{path} already holds files that are not a run; give a new or empty "
                        "folder, so that cnnlab never mixes a run into your files.")


def never_saved(path: Path) -> bool:
    """A run folder whose training stopped before anything worth resuming was written."""
    return not (path / WEIGHTS).exists() and not checkpoints(path)


def clear_stopped_run(path: Path) -> None:
    """The files of a run that stopped before its first checkpoint, which refuse_taken_out
    lets a new run replace; called only with the folder's lock held, so a run still starting
    there keeps its files."""
    if (path / CONFIG).exists():
        LOGGER.warning("%s held a run that stopped before its first checkpoint; this run "
                       "replaces it.", path)
        for name in (METRICS, SKIPPED, CURVES):  # what it wrote that this run appends to
            (path / name).unlink(missing_ok=True)   # or might not write at all


def new_run_dir(config: TrainConfig) -> Path:
    """Create the run folder (refuse_taken_out, before and after the lock, keeps an old run
    or the user's files out of it: training/run.py)."""
    if config.out:
        path = Path(config.out)
    else:
        stem = f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{config.model}-{config.dataset}"
        path, n = Path(stem), 1
        while path.exists():  # two runs started in the same second
            n += 1
            path = Path(f"{stem}-{n}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create run folder {path}: {exc.strerror}.") from None
    return path


@dataclass
class RunSpec:
    """What config.json records beyond the training config: how to rebuild model and input."""
    config: TrainConfig
    classes: list[str]
    model_args: dict       # create_model arguments: num_classes, in_channels, kwargs
    preprocess: Preprocess

    def to_dict(self) -> dict:
        return {"cnnlab_version": __version__, "train": self.config.to_dict(),
                "classes": self.classes, "model": self.model_args,
                "preprocess": self.preprocess.to_dict()}

    def build_model(self) -> nn.Module:
        args = self.model_args
        model = create_model(self.config.model, num_classes=args["num_classes"],
                             in_channels=args["in_channels"], **args.get("kwargs", {}))
        # the several-layer head a transfer run trained (--head-layers; models/heads.py)
        return add_hidden_layers(model, self.config.head_layers if self.config.pretrained else 1)


def write_spec(run_dir: Path, spec: RunSpec) -> None:
    atomic_write_text(run_dir / CONFIG, json.dumps(spec.to_dict(), indent=2) + "\n")


def read_spec(run_dir: str | Path) -> RunSpec:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"{run_dir} does not exist; give the run folder `cnnlab train` wrote.")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file, not a run folder; give the folder `cnnlab train` "
                        "wrote (its model is inside it).")
    if not (run_dir / CONFIG).is_file():
        raise UserError(f"{run_dir} is not a cnnlab run folder (it has no {CONFIG}).")
    try:
        values = json.loads((run_dir / CONFIG).read_text())
        spec = RunSpec(TrainConfig.from_dict(values["train"], str(run_dir / CONFIG)),
                       list(values["classes"]), dict(values["model"]),
                       Preprocess.from_dict(values["preprocess"]))
    except KeyError as exc:
        raise UserError(f"{run_dir / CONFIG} is damaged or not from cnnlab (it has no "
                        f"{exc}).") from None
    except (ValueError, TypeError) as exc:
        raise UserError(f"{run_dir / CONFIG} is damaged or not from cnnlab ({exc}).") from None
    wrong = _inconsistency(spec)
    if wrong:
        raise UserError(f"{run_dir / CONFIG} was edited into something no model can be built "
                        f"from: {wrong}.")
    return spec


def _inconsistency(spec: RunSpec) -> str | None:
    """What in a hand-edited config.json cannot describe a model and its input, if anything."""
    size, args = spec.preprocess.size, spec.model_args

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    if not all(isinstance(c, str) for c in spec.classes):
        return "the class names must be text"
    if not (len(size) == 2 and all(map(whole, size))):
        return f"the image size {list(size)} must be two whole numbers above 0"
    if spec.preprocess.channels not in (1, 3) or len(spec.preprocess.mean) != \
            spec.preprocess.channels or len(spec.preprocess.std) != spec.preprocess.channels:
        return "the channels, mean and std do not agree (1 or 3 channels, a value each)"
    if not (whole(args.get("num_classes")) and whole(args.get("in_channels"))):
        return "the model's num_classes and in_channels must be whole numbers above 0"
    if spec.config.task == "classify" and args["num_classes"] != len(spec.classes):
        return (f"it lists {len(spec.classes)} classes for a model with "
                f"{args['num_classes']} outputs")
    return None


@dataclass
class Run:
    path: Path
    spec: RunSpec
    model: nn.Module


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
    """Rebuild a finished run's model with its trained weights, in evaluation mode."""
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    if not (run_dir / WEIGHTS).is_file():
        raise UserError(f"{run_dir} has no trained model ({WEIGHTS} is missing); "
                        "its training did not finish.")
    model = load_weights(spec.build_model(), run_dir / WEIGHTS)
    return Run(run_dir, spec, model.to(device).eval())


def append_metrics(run_dir: Path, metrics: dict) -> None:
    with open(run_dir / METRICS, "a") as handle:
        handle.write(json.dumps(metrics) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    """One dict per epoch. A last line cut short (the process killed while appending it) is
    dropped with a warning: its epoch is redone from the checkpoint on --resume. A damaged
    line anywhere else is a one-sentence error."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise UserError(f"{path} line {number} is not JSON; the file was edited or "
                                "damaged, so this run's history cannot be read.") from None
            LOGGER.warning("%s: its last line was cut short (the run was killed while writing "
                           "it) and is ignored.", path)
    return rows


def write_skipped(run_dir: Path, skipped: list[tuple[str, str]]) -> None:
    lines = [f"{file}\t{reason}" for file, reason in skipped]
    atomic_write_text(run_dir / SKIPPED, "\n".join(lines) + "\n")
