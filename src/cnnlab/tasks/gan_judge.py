"""The GAN's judge (gan.py): a classifier of the data set's classes, trained once per run on
the run's own batches and kept in RUN/judge/, whose features give the Fréchet distance and
whose confidence says which samples it recognises (frechet.py)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ..atomic import atomic_write_bytes, atomic_write_text
from ..engine.loop import fit as engine_fit
from ..errors import UserError
from ..logs import LOGGER
from ..models import create_model
from .classify import Classify
from .frechet import Judge

JUDGE = "judge"  # its folder in the run folder
# The lectures' LeNet-5 (ReLU: trains in seconds with Adam), at its own 28x28.
JUDGE_MODEL, JUDGE_OPTIONS, JUDGE_SIZE = "lenet5", {"activation": "relu"}, (28, 28)
JUDGE_STEPS, JUDGE_MAX_EPOCHS, JUDGE_LR = 3000, 30, 1e-3  # steps, passes, Adam's rate


def build_judge(channels: int, classes: int) -> Judge:
    classifier = create_model(JUDGE_MODEL, num_classes=classes, in_channels=channels,
                              **JUDGE_OPTIONS)
    return Judge(classifier, JUDGE_SIZE)


def load_judge(run_dir: Path, device) -> Judge:
    """The judge a run trained (RUN/judge/)."""
    folder = Path(run_dir) / JUDGE
    try:
        record = json.loads((folder / "judge.json").read_text())
        with torch.random.fork_rng(devices=[]):  # its initial weights, overwritten, draw none
            judge = build_judge(record["in_channels"], record["num_classes"])
        judge.classifier.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"{folder} does not hold the classifier that judges this GAN "
                        f"({type(exc).__name__}); train the run again.") from None
    return judge.to(device).eval()


def judge_for(run_dir: Path | None, model, train_batches, val_batches, main: bool = True) -> Judge:
    """RUN/judge/ when an earlier start of this run trained it; else trained now, on the
    run's own batches (same size, channels and scale as the GAN's images), and saved."""
    device = model.fixed_noise.device
    if run_dir is not None and (run_dir / JUDGE / "model.safetensors").is_file():
        LOGGER.info(f"judging the samples with the classifier in {run_dir / JUDGE}")
        return load_judge(run_dir, device)
    channels = model.discriminator.features[0].in_channels
    start = time.perf_counter()
    judge, accuracy, epochs = train_judge(channels, model.num_classes, train_batches,
                                          val_batches, device)
    seconds = time.perf_counter() - start
    where = f"; kept in {run_dir / JUDGE}" if run_dir is not None else ""
    LOGGER.info(f"trained the judge ({JUDGE_MODEL}, ReLU, {epochs} epochs, {seconds:.1f} s): "
                f"validation accuracy {accuracy:.2%}{where}")
    if main and run_dir is not None:
        folder = run_dir / JUDGE
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in judge.classifier.state_dict().items()}
        atomic_write_bytes(folder / "model.safetensors", save(state))
        atomic_write_text(folder / "judge.json", json.dumps({
            "model": JUDGE_MODEL, "options": JUDGE_OPTIONS, "input_size": list(JUDGE_SIZE),
            "in_channels": channels, "num_classes": model.num_classes, "epochs": epochs,
            "val_accuracy": accuracy, "seconds": seconds}, indent=2) + "\n")
    return judge.eval()


def train_judge(channels: int, classes: int, train_batches, val_batches, device):
    """(judge, validation accuracy, epochs): trained with the engine's own loop, from its
    own seed, leaving the global random state and the batches' position as they were, so a
    run that trains its judge and one that finds it in RUN/judge/ train the same GAN."""
    position = train_batches.state_dict()
    cuda = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(0)
        judge = build_judge(channels, classes).to(device)
        epochs = max(1, min(JUDGE_MAX_EPOCHS, math.ceil(JUDGE_STEPS / max(len(train_batches), 1))))
        history = engine_fit(judge, train_batches, val_batches, epochs=epochs, task=Classify(),
                             optimizer=torch.optim.Adam(judge.parameters(), lr=JUDGE_LR))
    train_batches.load_state_dict(position)
    return judge, history[-1]["val_accuracy"], epochs
