"""Video classification: one class per clip; classification (classify.py) whose inputs are
clips, uint8 N x T x C x H x W frames first (data/moving_shapes.py), rather than images.

Everything classification does carries over: cross-entropy with label smoothing, accuracy.
What differs is what the task accepts and how clips are normalised: the data set's
per-channel statistics would be fitted over the wrong axis of a 5-D tensor, so clips take a
fixed scale, Kinetics-400's statistics (those of torchvision's video weights).
"""
from __future__ import annotations

from ..data.transforms import Preprocess
from ..errors import UserError
from ..models.video import KINETICS_MEAN, KINETICS_STD
from .classify import Classify


class Video(Classify):
    name = "video"

    def targets(self, splits):
        """A data set of clips (5-D uint8); a set of images is classification's."""
        images = getattr(splits.train, "images", None)
        if images is None or images.dim() != 5:
            raise UserError(f"data set {splits.name} holds images, not clips; train it with "
                            "--task classify, or choose a set of clips (moving-shapes, ucf101, "
                            "hmdb51, videos:PATH).")
        return super().targets(splits)

    def preprocess(self, channels: int, size) -> Preprocess:
        """Kinetics' mean and std for RGB clips, an even spread of 0-255 otherwise."""
        mean, std = ((KINETICS_MEAN, KINETICS_STD) if channels == 3
                     else ((0.45,) * channels, (0.225,) * channels))
        return Preprocess(channels, tuple(size), tuple(mean), tuple(std))
