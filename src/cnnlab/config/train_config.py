"""TrainConfig: the one place every training default lives.

The `cnnlab train` flags are generated from these fields, a --config file may set the same
keys, and RUN/config.json records the final values so a run can be rebuilt from its folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..layers import NORMS
from ..accel.layout import FORMATS
from ..accel.precision import PRECISIONS
from ..data.augment import PRESETS
from ..data.decode import BAD_FILES
from ..data.pipeline import LOADING
from ..engine.optim import OPTIMIZERS, SCHEDULERS
from ..models.heads import MAX_LAYERS as MAX_HEAD_LAYERS
from ..models.weights import SOURCES
from ..tasks import TASKS
from ..tasks.tta import TTA
from .recipes import RECIPES, recipe_defaults, recipe_for


def _opt(default, help: str, **extra):
    """A field with its command-line help beside it (choices, metavar ...)."""
    return field(default=default, metadata={"help": help, **extra})


# --transfer: what training/transfer.py does with a pretrained model (defined here, the
# lower layer, so that transfer.py and the flag share one list).
TRANSFER_MODES = ("features", "finetune", "scratch")
# More decoding processes than this only wait on each other (and 1,000 exhaust the machine).
MAX_WORKERS = 32
FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max
# Where a run lives, not how it trains: left out when a run's config.json is given as --config.
RUN_PLACE = ("out", "resume")

# How `cnnlab train --help` groups the flags: each group's first field; a field belongs to
# the group of the nearest first field above it (the fields are declared in this order).
GROUPS = {"recipe": "task and model", "pretrained": "transfer learning", "dataset": "data",
          "epochs": "optimisation", "device": "run folder and reproducibility",
          "clip_grad": "numerics and fast path"}


@dataclass
class TrainConfig:
    # The defaults train the lectures' LeNet-5 on the built-in digits to about 97.5-98% test
    # accuracy in seconds on a laptop CPU (4 seeds checked: see README). Adam with a one-cycle
    # schedule and label smoothing is what got sigmoid LeNet there reliably; plain SGD with
    # StepLR, as in the lectures, is one flag away.
    recipe: str | None = _opt(None, "start from a published recipe's settings instead of these "
                              "defaults (recipes.py); flags given still override them",
                              choices=tuple(RECIPES))
    task: str = _opt("classify", "the image task to train for: " + "; ".join(
        f"{name} ({entry.about})" for name, entry in TASKS.items()), choices=tuple(TASKS))
    model: str = _opt("lenet5", "registered model name (see `cnnlab models`)")
    model_kwargs: dict = field(default_factory=dict, metadata={
        "help": "extra model arguments as KEY=VALUE, e.g. activation=relu", "metavar": "KEY=VALUE"})
    norm: str | None = _opt(None, "normalisation layer, for models that take one (vgg, googlenet, "
                            "resnet); default: the architecture's own", choices=tuple(NORMS))
    weights: str | None = _opt(None, "start from pretrained weights: torchvision (its ImageNet "
                               "weights; downloaded once, needs the network)",
                               choices=SOURCES)
    weights_file: str | None = _opt(None, "start from the weights in this .pth/.pt or "
                                    ".safetensors file (torchvision's key names)")
    # Transfer learning (001, 003; training/transfer.py): --pretrained NAME replaces --model.
    pretrained: str | None = _opt(None, "start from this model's ImageNet weights, with a new "
                                  "head for the data set's classes and the input the weights "
                                  "expect (efficientnet_lite0 works offline; torchvision's "
                                  "need the network or --weights-file)", metavar="MODEL")
    transfer: str = _opt("features", "with --pretrained: features (train only the new head), "
                         "finetune (train everything) or scratch (same model, random weights)",
                         choices=TRANSFER_MODES)
    unfreeze_after: int = _opt(0, "with --transfer features: train the whole network after "
                               "this many epochs (0: never)")
    backbone_lr: float = _opt(0.0, "learning rate of the pretrained layers when they train "
                              "(0: --lr / 10)")
    head_layers: int = _opt(1, "with --pretrained: Linear layers in the new head; 1 replaces "
                            "the output layer (001), 2 or more add hidden layers of 256 units "
                            "with ReLU before it (003's 'add new layers and retrain them')")
    dataset: str = _opt("digits", "data set name (digits is built in and needs no download)")
    data_dir: str = _opt("data", "where standard data sets are stored")
    download: bool = _opt(False, "download a missing standard data set (needs the network)")
    augment: str = _opt("auto", "training augmentation: none, flip-crop, strong, or auto (what "
                        "suits the data set: none for digits, flip-crop for photographs)",
                        choices=("auto", *PRESETS))
    data_loading: str = _opt("auto", "memory (whole set on the device), stream (DataLoader "
                             "workers), or auto (memory when it fits)",
                             choices=LOADING)
    workers: int = _opt(-1, "DataLoader worker processes for decoding (-1: one per core, "
                        "leaving one free, at most 8)")
    bad_files: str = _opt("skip", "unusable files in folder/CSV/masks data sets (unreadable, "
                          "or an image without its mask): skip (listed in RUN/skipped.txt) or "
                          "fail", choices=BAD_FILES)
    epochs: int = _opt(30, "passes over the training set")
    batch_size: int = _opt(32, "images per optimisation step")
    limit_batches: int = _opt(0, "use at most this many batches of each split per epoch, for a "
                              "quick smoke run (0: all; like Lightning's limit_*_batches)")
    lr: float = _opt(0.01, "learning rate (the peak rate for onecycle)")
    momentum: float = _opt(0.9, "momentum for sgd; beta1 for adam and adamw")
    weight_decay: float = _opt(0.0, "L2 penalty (decoupled for adamw)")
    optimizer: str = _opt("adam", "optimisation algorithm", choices=tuple(OPTIMIZERS))
    scheduler: str = _opt("onecycle", "learning-rate schedule",
                          choices=tuple(SCHEDULERS))
    step_size: int = _opt(7, "epochs between decays for --scheduler step (the lectures' StepLR)")
    gamma: float = _opt(0.1, "decay factor for --scheduler step")
    label_smoothing: float = _opt(0.0, "cross-entropy label smoothing in [0, 1) (the lectures' "
                                  "plain cross-entropy: 0; some recipes turn it on)")
    dice: float = _opt(0.0, "--task segment: weight of the Dice loss added to the per-pixel "
                       "cross-entropy (0: none; 1 weighs them alike)")
    scale: int = _opt(2, "--task superres: how many times larger the output image is on each "
                      "side: 2, 3 or 4")
    metric_loss: str = _opt("arcface", "--task embed: ArcFace (additive angular margin 0.5, "
                            "scale 30) or triplet (batch-hard, margin 0.2)",
                            choices=("arcface", "triplet"), aliases=("--loss",))
    holdout_classes: str = _opt("", "--task embed: classes kept out of training and validation, "
                                "by name or index, comma-separated (e.g. 7,8,9); the test split "
                                "then holds only them, to verify on identities never seen")
    caption_reference: str = _opt("random", "--task caption: the reference sentence each "
                                  "training step teaches per image: random (any of them; for "
                                  "references in no order, e.g. Flickr8k's) or first (the "
                                  "canonical one, e.g. shapes-captions' \"A above B\")",
                                  choices=("random", "first"))
    ema: float = _opt(0.0, "validate, test and save an exponential moving average of the "
                      "weights, with this decay per step, e.g. 0.99 (0: off; engine/ema.py)")
    tta: str = _opt("none", "test-time augmentation: flip (average the logits of each image "
                    "and its mirror) or none", choices=tuple(TTA))
    device: str = _opt("auto", "cpu, cuda, cuda:N, mps, or auto (cuda, then mps, then cpu)")
    seed: int = _opt(0, "random seed for weights, shuffling and augmentation")
    out: str | None = _opt(None, "run folder (default runs/<timestamp>-<model>-<dataset>)")
    resume: str | None = _opt(None, "continue the run in this folder exactly where its newest "
                              "checkpoint left it (--epochs may extend it)")
    checkpoint_every: int = _opt(0, "also checkpoint every N training steps (0: epoch ends only)")
    keep: int = _opt(3, "checkpoints kept in RUN/checkpoints (the newest)")
    tensorboard: bool = _opt(False, "also write scalars and sample images for TensorBoard to "
                             "RUN/tensorboard (needs the extra cnnlab[tensorboard])")
    clip_grad: float = _opt(0.0, "clip the gradient norm to this value (0: off)")
    deterministic: bool = _opt(False, "PyTorch's deterministic algorithms only (slower; "
                               "bit-for-bit repeatable runs on one machine)")
    sync_bn: bool = _opt(False, "with torchrun: batch-norm statistics over all processes")
    # The fast path (accel/fastpath.py); config.json records the choices 'auto' made.
    memory_format: str = _opt("auto", "tensor layout: channels_last, contiguous, or auto (the "
                              "faster of the two in a few timed steps of this model)",
                              choices=("auto", *FORMATS))
    precision: str = _opt("auto", "number format: fp32, bf16, fp16 (mixed precision), or auto "
                          "(bf16 or fp16 on CUDA GPUs; on a CPU with native bf16 the faster of fp32 and "
                          "bf16 as timed by the fast path; fp32 elsewhere)",
                          choices=PRECISIONS)
    compile: bool = _opt(False, "torch.compile the model first (its seconds reported apart; "
                         "pays on GPUs, rarely on CPUs)")

    def validate(self) -> "TrainConfig":
        """Reject numbers that cannot train, with the flag to fix in the message."""
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"--{_flag(name)} must be a positive whole number, not {value!r}.")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{_flag(f.name)} must be a finite number, not {value!r}.")
            if isinstance(value, float) and abs(value) > FLOAT32_MAX:  # the optimiser's type
                raise UserError(f"--{_flag(f.name)} {value!r} is beyond what a float32 holds "
                                f"({FLOAT32_MAX:.3g}).")
        if not self.lr > 0:
            raise UserError(f"--lr must be a positive number, not {self.lr!r}.")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"--seed must be a whole number from 0 to {2**32 - 1} (what every "
                            f"random generator accepts), not {self.seed}.")
        if not -1 <= self.workers <= MAX_WORKERS:
            raise UserError(f"--workers must be -1 (one per core), 0 (decode in this process) "
                            f"or up to {MAX_WORKERS}, not {self.workers}.")
        if self.weight_decay < 0 or self.momentum < 0:
            raise UserError("--momentum and --weight-decay must not be negative.")
        if self.optimizer == "nesterov" and not self.momentum > 0:
            raise UserError("--optimizer nesterov needs a positive --momentum.")
        if self.optimizer in ("adam", "adamw") and not self.momentum < 1:
            raise UserError(f"--momentum is {self.optimizer}'s beta1, a decay that must be "
                            f"below 1, not {self.momentum!r}.")
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema must be in [0, 1) (0: off), not {self.ema!r}.")
        if self.dice < 0:
            raise UserError(f"--dice must not be negative, not {self.dice!r}.")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"--label-smoothing must be in [0, 1), not {self.label_smoothing!r}.")
        if self.limit_batches < 0:
            raise UserError(f"--limit-batches must be 0 (no limit) or more, not {self.limit_batches}.")
        if self.weights is not None and self.weights_file is not None:
            raise UserError("give --weights or --weights-file, not both.")
        if self.checkpoint_every < 0 or self.keep < 1 or self.clip_grad < 0:
            raise UserError("--checkpoint-every and --clip-grad must not be negative, and --keep "
                            "must be at least 1.")
        if self.step_size <= 0 or self.gamma <= 0:
            raise UserError("--step-size and --gamma must be positive.")
        self._validate_transfer()
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            unset = f.default is None and getattr(self, f.name) is None  # --norm, --weights
            if choices and not unset and getattr(self, f.name) not in choices:
                raise UserError(f"--{_flag(f.name)} must be one of {', '.join(choices)}, "
                                f"not {getattr(self, f.name)!r}.")
        return self

    def _validate_transfer(self) -> None:
        if self.unfreeze_after < 0 or self.backbone_lr < 0:
            raise UserError("--unfreeze-after and --backbone-lr must not be negative.")
        if self.pretrained is None and (self.unfreeze_after or self.backbone_lr):
            raise UserError("--unfreeze-after and --backbone-lr need --pretrained MODEL.")
        if self.pretrained is not None and self.weights is not None:
            raise UserError("--pretrained loads its own weights; drop --weights (a local copy "
                            "of them goes in --weights-file).")
        if self.unfreeze_after and self.transfer != "features":
            raise UserError("--unfreeze-after is for --transfer features (finetune trains "
                            "everything from the start).")
        if not 1 <= self.head_layers <= MAX_HEAD_LAYERS or (self.head_layers > 1 and (
                self.pretrained is None or self.task != "classify")):
            raise UserError(f"--head-layers must be from 1 to {MAX_HEAD_LAYERS}, and above 1 only "
                            f"for a classifier with --pretrained MODEL, not {self.head_layers}.")
        if self.unfreeze_after >= self.epochs:
            raise UserError(f"--unfreeze-after {self.unfreeze_after} leaves no epoch to train "
                            f"the whole network; make it less than --epochs {self.epochs}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """The defaults `values` starts from (starting_point) with `values` applied."""
        return cls.starting_point(values).updated(values, source)

    @classmethod
    def starting_point(cls, values: dict[str, Any]) -> "TrainConfig":
        """The defaults a run described by `values` starts from: the recipe it names, else its
        task's own recipe (TASK_RECIPES: `--task detect` alone trains what the README
        measured), else TrainConfig's. A recipe's model options belong to the recipe's model
        (a backbone), so they are dropped when `values` names another model or pretrained
        weights."""
        recipe = recipe_for(values.get("recipe"), values.get("task"))
        config = cls.for_recipe(recipe)
        if recipe is not None and (values.get("model", config.model) != config.model
                                   or values.get("pretrained")):
            config = dataclasses.replace(config, model_kwargs={})
        return config

    @classmethod
    def for_recipe(cls, name: str | None) -> "TrainConfig":
        """The defaults of recipe `name` (recipes.py), or TrainConfig's own for None."""
        if name is None:
            return cls()
        return cls().updated({**recipe_defaults(name), "recipe": name}, f"recipe {name}")

    def updated(self, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """A copy with `values` applied; an unknown key is an error naming the valid ones."""
        known = {f.name: f for f in dataclasses.fields(self)}
        changes = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise UserError(f"{source} has an unknown key '{key}'; valid keys are: "
                                f"{', '.join(known)}.")
            changes[name] = _coerce(known[name], value, source)
        return dataclasses.replace(self, **changes)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Accept 3 for a float field and "0.1" from YAML quirks, but not words for numbers."""
    kind = type(f.default) if f.default is not None and f.default is not dataclasses.MISSING else None
    if f.name == "model_kwargs":
        if not isinstance(value, dict):
            raise UserError(f"{source}: model_kwargs must be a mapping of argument names to values.")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{source}: {f.name} must be true or false, not {value!r}.")
    if isinstance(value, bool) and kind in (int, float):  # YAML's `epochs: yes` is not 1
        raise UserError(f"{source}: {f.name} must be a number, not {value!r}.")
    if value is None or kind in (None, str):
        return value if value is None else str(value)
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        noun = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise UserError(f"{source}: {f.name} must be {noun}, not {value!r}.") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of TrainConfig keys (validated when applied)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text (is it the file you meant?); "
                        "save it as UTF-8 YAML or JSON.") from None
    try:
        # JSON is a subset of YAML, but json.loads gives clearer messages for .json files.
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"config file {path} could not be parsed: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values.")
    if isinstance(values.get("train"), dict) and "preprocess" in values:
        # a run's own config.json: train again as it was trained, into a new folder
        return {k: v for k, v in values["train"].items() if k not in RUN_PLACE}
    return values
