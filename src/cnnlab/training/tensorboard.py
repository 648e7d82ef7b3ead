"""`cnnlab train --tensorboard`: the run's progress in the event files TensorBoard reads.

PyTorch users watch training in TensorBoard (`tensorboard --logdir RUN/tensorboard`), through
torch.utils.tensorboard.SummaryWriter. Per epoch it gets the numbers metrics.jsonl holds, as
loss/train next to loss/validation and the task's metrics likewise (accuracy/train next to
accuracy/validation, miou/train next to miou/validation ...), so each pair shares a chart; once, at the start, the config and a grid of validation images as the
model sees them (after resizing, before normalisation).

SummaryWriter needs the `tensorboard` package, an optional extra (cnnlab[tensorboard]): the
flag asks for it up front rather than failing after the run folder is made.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

from ..runs import folder as runs
from ..tasks.diagnostics import denormalise
from ..errors import UserError

SAMPLES = 16  # validation images in the sample grid
# metrics.jsonl keys with tags of their own; train_X and val_X become X/train, X/validation
OTHER_SCALARS = {"lr": "learning_rate", "images_per_second": "throughput/images_per_second"}


def scalar_tag(key: str) -> str | None:
    """The TensorBoard tag of a metrics.jsonl key, whatever the task's metrics (accuracy,
    miou ...), so train and validation share a chart; None for what is not a curve."""
    for prefix, side in (("train_", "train"), ("val_", "validation")):
        if key.startswith(prefix):
            return f"{key[len(prefix):]}/{side}"
    return OTHER_SCALARS.get(key)


def require() -> None:
    try:
        import tensorboard  # noqa: F401  (SummaryWriter imports it on first use)
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package; install it with "
                        "pip install 'cnnlab[tensorboard]'.") from None


class TensorBoardLog:
    def __init__(self, run_dir, start_epoch: int = 1):
        require()
        from torch.utils.tensorboard import SummaryWriter
        # A resumed run redoes `start_epoch`: purge_step drops anything logged from it on.
        self.writer = SummaryWriter(str(run_dir / runs.TENSORBOARD),
                                    purge_step=start_epoch if start_epoch > 1 else None)

    def describe(self, spec: runs.RunSpec, batches) -> None:
        """The config as text and a grid of validation images, logged at step 0."""
        text = json.dumps(spec.to_dict()["train"], indent=2)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # code block
        for inputs, _labels in batches:
            self.writer.add_images("samples/validation",
                                   denormalise(inputs[:SAMPLES], spec.preprocess), 0)
            break

    def epoch_end(self, metrics: dict) -> None:
        for key, value in metrics.items():
            tag = scalar_tag(key)
            if tag is not None:
                self.writer.add_scalar(tag, value, metrics["epoch"])
        self.writer.flush()  # a user watching live sees each epoch as it ends

    def close(self) -> None:
        self.writer.close()


@contextmanager
def attached(session, spec: runs.RunSpec, start_epoch: int = 1):
    """Log `session`'s epochs while the block runs, when its config asks for --tensorboard
    (on the main process only: under torchrun the others write nothing)."""
    if not session.config.tensorboard or not session.world.main:
        yield None
        return
    log = TensorBoardLog(session.run_dir, start_epoch)
    log.describe(spec, session.batches["val"])
    session.epoch_hooks.append(log.epoch_end)
    try:
        yield log
    finally:
        session.epoch_hooks.remove(log.epoch_end)
        log.close()
