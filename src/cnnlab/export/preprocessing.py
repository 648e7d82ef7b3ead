"""The run's preprocessing in a form another runtime follows without cnnlab.

cnnlab's predictions start from a uint8 image: its channels made the model's, resized (or
resized by the shorter side and centre-cropped, for ImageNet weights), then normalised as
(x / 255 - mean) / std. `describe` writes those steps, in order, as plain data beside the
exported model, so that a few lines of PIL and numpy reproduce the input the model saw.
`Uint8Input` bakes the last two steps into the model itself instead: the exported file then
takes uint8 pixels at the model's size, and only the resizing is left to the caller.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import __version__

MADE_BY = "cnnlab export"

# What the exported model's output means, per task: the key a consumer needs most.
OUTPUTS = {
    "classify": "logits, one per class in the order of 'classes' (softmax: probabilities)",
    "segment": "logits per class and pixel at the input's size (argmax over dimension 1: "
               "the class of each pixel)",
    "video": "logits, one per class in the order of 'classes', for each clip",
    "embed": "an L2-normalised embedding per image (compare two with their dot product)",
}


class Uint8Input(nn.Module):
    """`model` preceded by the normalisation: uint8 pixels in, the model's output out.
    The arithmetic is Preprocess.normalise's (x * scale + shift), so outputs match cnnlab's
    to the last bit the runtime allows."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        std, mean = torch.tensor(std).view(-1, 1, 1), torch.tensor(mean).view(-1, 1, 1)
        self.register_buffer("scale", 1 / (255 * std))
        self.register_buffer("shift", -mean / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels.to(torch.float32) * self.scale + self.shift)


def _sizing_steps(preprocess) -> list[dict]:
    mode = {"interpolation": preprocess.interpolation, "antialias": True}
    if preprocess.resize is not None:
        return [{"step": "resize_shorter_side", "size": preprocess.resize, **mode},
                {"step": "center_crop", "size": list(preprocess.size)}]
    return [{"step": "resize", "size": list(preprocess.size), **mode,
             "note": "[height, width]; skipped when the image already has this size"}]


def steps(preprocess, uint8_input: bool, clips: bool = False) -> list[dict]:
    """What happens to an image file (each frame of a clip) before the exported model sees
    it, in order."""
    channels = preprocess.channels
    decode = {"step": "decode", "to": "L" if channels == 1 else "RGB", "dtype": "uint8",
              "note": "alpha dropped; grey to RGB by repetition, RGB to grey by luminance "
                      "(0.2989 R + 0.587 G + 0.114 B)"}
    normalise = [] if uint8_input else [
        {"step": "to_float", "scale": 1 / 255},
        {"step": "normalize", "mean": list(preprocess.mean), "std": list(preprocess.std),
         "note": "(x - mean) / std per channel"}]
    layout = {"step": "layout", "order": "CHW", "note": "channels first; stack images into a "
              "batch along a new first axis"}
    if clips:
        layout["note"] = ("channels first; stack a clip's frames along a new first axis "
                          "(T x C x H x W), then clips into a batch (N x T x C x H x W)")
    return [decode, *_sizing_steps(preprocess), *normalise, layout]


def describe(subject, fmt: str, file_name: str, input_shape: list, output_shape: list,
             uint8_input: bool) -> dict:
    """The JSON written beside the model (and into its metadata)."""
    return {
        "made_by": MADE_BY, "cnnlab_version": __version__, "format": fmt, "file": file_name,
        "model": subject.name, "task": subject.task, "source": subject.source,
        "input": {"name": "input", "dtype": "uint8" if uint8_input else "float32",
                  "shape": input_shape, "channel_order": "L" if subject.preprocess.channels == 1
                  else "RGB"},
        "output": {"name": "output", "shape": output_shape, "meaning": OUTPUTS[subject.task]},
        "steps": steps(subject.preprocess, uint8_input, clips=subject.task == "video"),
        "classes": subject.classes,
        # cnnlab's own record, as RUN/config.json holds it (Preprocess.from_dict reads it)
        "preprocess": subject.preprocess.to_dict(),
    }
