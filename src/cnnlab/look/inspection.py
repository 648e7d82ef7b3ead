"""What the looking-inside commands look at: a trained run's model or a pretrained one, fed an
image exactly as its training fed images, and named layers whose outputs are caught in passing.

Lecture 001 looks inside by calling one layer, `X = cnn.conv1(X)`. With a whole network the
same is done with forward hooks: the model runs as usual and each hooked layer hands over its
output. Lecture 004 splits a network into a feature extractor and a classification head; the
'convolution stages' shown by default are the blocks of the feature extractor that hold a
convolution, each taken after the normalisation and activation that follow it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.images import decode_image
from ..data.transforms import Preprocess
from ..errors import UserError

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


@dataclass
class Subject:
    """A model in evaluation mode with the preprocessing and class names that belong to it."""
    model: nn.Module
    preprocess: Preprocess
    classes: list[str]
    name: str  # the run folder or the pretrained model's name, for titles
    device: torch.device

    def prepare(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 C x H x W image -> (the uint8 picture the model sees, its 1 x C x H x W input)."""
        shown = self.preprocess.fit_size(image)
        return shown, self.preprocess.normalise(shown).unsqueeze(0).to(self.device)


LONE_WEIGHTS_FILE = ("--weights-file goes with --pretrained (a local copy of its weights); a run "
                     "folder's model is always its own model.safetensors.")


def load_subject(run: str | None = None, pretrained: str | None = None,
                 weights_file: str | None = None, device: str = "auto") -> Subject:
    """A run folder's model (its own preprocessing), or --pretrained NAME with ImageNet's."""
    from ..accel.device import resolve_device
    if (run is None) == (pretrained is None):
        raise UserError("give a run folder or --pretrained MODEL (one of the two).")
    if weights_file is not None and pretrained is None:
        raise UserError(LONE_WEIGHTS_FILE)
    device = resolve_device(device)
    if pretrained is not None:
        from ..training.pretrained import imagenet_classes, pretrained_model
        model, record = pretrained_model(pretrained, weights_file)
        return Subject(model.to(device).eval(), record.preprocess, imagenet_classes(),
                       pretrained, device)
    from ..runs.folder import load_run
    loaded = load_run(run, device)
    return Subject(loaded.model, loaded.spec.preprocess, loaded.spec.classes, Path(run).name,
                   device)


def read_image(path: str | None = None, sample: str | None = None) -> torch.Tensor:
    """An image file (any format decode_image reads) or a shipped photograph, as uint8 C x H x W."""
    if (path is None) == (sample is None):
        raise UserError("give an image file or --sample NAME (one of the two).")
    if path is not None:
        return decode_image(path)
    from ..course.kernels import sample_image
    pixels = np.asarray(sample_image(sample))
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels[..., :3]
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(pixels, -1, 0)))


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called `name` (as `cnnlab summary` lists them); a UserError otherwise."""
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    near = [n for n in modules if n and n.count(".") <= 1][:12]
    raise UserError(f"the model has no layer '{name}'; for example: {', '.join(near)} "
                    "(`cnnlab summary MODEL` lists every one).")


def first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((t for t in map(first_tensor, value) if t is not None), None)
    return None


@contextmanager
def captured(model: nn.Module, names: list[str], keep_graph: bool = False):
    """{name: output} filled in by the next forward pass. A layer run twice keeps its first
    output (the one its position in the network describes). `keep_graph` leaves the outputs
    attached to autograd, for gradients with respect to them (Grad-CAM)."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_module, _args, output):
            tensor = first_tensor(output)
            if name in outputs or tensor is None:
                return None
            outputs[name] = tensor if keep_graph else tensor.detach()
            if keep_graph and tensor is output:
                # The network goes on with a copy: an in-place op after the layer (ReLU with
                # inplace=True) would otherwise overwrite the maps we differentiate against.
                return output.clone()
            return None
        return hook

    handles = [find_layer(model, n).register_forward_hook(keep(n)) for n in names]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _holds_convolution(module: nn.Module) -> bool:
    return any(isinstance(m, CONVOLUTIONS) for m in module.modules())


def _feature_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The children of the feature extractor (model.features, or where the model says it
    is: a detector's backbone.body), or of the model itself."""
    path = getattr(model, "features_path", "features")
    features = model.get_submodule(path) if _has(model, path) else None
    if isinstance(features, nn.Module):
        return [(f"{path}.{n}", m) for n, m in features.named_children()]
    return list(model.named_children())


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def _run_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, bool]]:
    """(name, block, keeps its input's shape) per block, in the order a forward pass runs them."""
    order: dict[str, tuple[nn.Module, bool]] = {}

    def note(name):
        def hook(module, args, output):
            tensor, source = first_tensor(output), first_tensor(args)
            same = tensor is not None and source is not None and tensor.shape == source.shape
            order.setdefault(name, (module, same))
        return hook

    handles = [m.register_forward_hook(note(n)) for n, m in _feature_blocks(model)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return [(name, module, same) for name, (module, same) in order.items()]


def conv_stages(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Layer names whose outputs are 'the output of every convolution stage'.

    A block holding convolutions (an MBConv stage, a ResNet layer) is a stage by itself; a bare
    convolution in a flat Sequential (LeNet, VGG) is a stage together with the shape-keeping
    layers after it (norm, activation), so the map shown is what the next stage receives.
    """
    stages, current = [], None
    for name, module, same_shape in _run_order(model, x):
        if _holds_convolution(module):
            if current:
                stages.append(current)
            current = name if next(module.children(), None) is None else None
            if current is None:
                stages.append(name)
        elif current and same_shape and next(module.children(), None) is None:
            current = name
        elif current:
            stages.append(current)
            current = None
    return stages + ([current] if current else [])
