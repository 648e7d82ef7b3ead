"""Grad-CAM: where in the image the evidence for a class lies.

Selvaraju et al. 2017, 'Grad-CAM: visual explanations from deep networks via gradient-based
localization'. For class c and the K feature maps A^k of a convolutional layer:

    alpha_k = mean over positions (i, j) of  d y_c / d A^k_ij   (how much map k matters for c)
    L_c     = ReLU( sum_k alpha_k A^k )                          (only evidence *for* c)

upsampled to the input's size. The paper uses the last convolutional layer: its maps are the
most abstract that still know where things are. The layer's output is caught with a forward
hook and y_c differentiated with respect to it; nothing in the model is changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..errors import UserError
from .inspection import captured, conv_stages, load_subject, read_image
from ..figures import image_to_float, overlay, save_figure


@dataclass
class GradCam:
    out: Path | None
    image: str
    model: str
    layer: str
    class_index: int
    class_name: str
    probability: float
    heatmap: np.ndarray     # H x W at the model's input size, in [0, 1] (1 at the peak)
    picture: np.ndarray     # the heat map over the image, H x W x 3, as drawn

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the hottest input pixel."""
        return tuple(int(v) for v in np.unravel_index(self.heatmap.argmax(), self.heatmap.shape))

    def to_dict(self) -> dict:
        return {"out": str(self.out), "image": self.image, "model": self.model,
                "layer": self.layer, "class": self.class_name, "class_index": self.class_index,
                "probability": self.probability, "peak": list(self.peak)}


def class_index(wanted: str | int | None, classes: list[str], logits: torch.Tensor) -> int:
    """--class as a class name or a number; none: the model's top class."""
    if wanted is None:
        return int(logits.argmax())
    if str(wanted) in classes:
        return classes.index(str(wanted))
    try:
        index = int(wanted)
    except ValueError:
        index = -1
    if not 0 <= index < len(classes):
        raise UserError(f"--class must be a class name or a number from 0 to {len(classes) - 1}, "
                        f"not {wanted!r}.")
    return index


def grad_cam(model, x: torch.Tensor, layer: str, wanted=None, classes=None
             ) -> tuple[np.ndarray, int, float]:
    """(heat map at x's size in [0, 1], class index, its probability) for the one image in x."""
    with captured(model, [layer], keep_graph=True) as outputs, torch.enable_grad():
        # The input asks for a gradient so that frozen layers (transfer learning) still
        # connect the class score to the hooked maps.
        logits = model.eval()(x.detach().requires_grad_(True))
    maps = outputs.get(layer)
    if maps is None or maps.dim() != 4:
        raise UserError(f"layer '{layer}' gives no feature maps to explain; Grad-CAM needs a "
                        "convolutional layer.")
    names = classes or [str(i) for i in range(logits.shape[1])]
    index = class_index(wanted, names, logits[0])
    gradient, = torch.autograd.grad(logits[0, index], maps)
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().float().cpu()
    top = float(cam.max())
    heat = (cam / top if top > 0 else torch.zeros_like(cam)).numpy()
    probability = float(logits[0].detach().softmax(dim=0)[index])
    return heat, index, probability


def gradcam(run: str | None = None, image: str | None = None, *, pretrained: str | None = None,
            sample: str | None = None, target: str | None = None, layer: str | None = None,
            out: str | None = None, device: str = "auto",
            weights_file: str | None = None) -> GradCam:
    """`cnnlab gradcam (RUN | --pretrained NAME) IMAGE [--class K] [--layer NAME] [--out FILE]`."""
    subject = load_subject(run, pretrained, weights_file, device)
    shown, x = subject.prepare(read_image(image, sample))
    if layer is None:
        stages = conv_stages(subject.model, x)
        if not stages:
            raise UserError("the model has no convolution stage; name a layer with --layer.")
        layer = stages[-1]
    heat, index, probability = grad_cam(subject.model, x, layer, target, subject.classes)
    picture = overlay(image_to_float(shown.cpu()), heat)
    label = str(image if image is not None else sample)
    result = GradCam(None, label, subject.name, layer, index, subject.classes[index],
                     probability, heat, picture)
    result.out = save_figure(draw(result, image_to_float(shown.cpu())),
                             out or f"gradcam-{Path(label).stem}.png")
    return result


def draw(result: GradCam, picture: np.ndarray) -> Figure:
    fig = Figure(figsize=(8, 4.4))
    left, right = fig.subplots(1, 2)
    left.imshow(picture, interpolation="nearest")
    left.set_title("input as the model sees it", fontsize=9)
    right.imshow(result.picture.clip(0, 1), interpolation="nearest")
    right.set_title(f"Grad-CAM: '{result.class_name}' ({result.probability:.1%}), "
                    f"layer {result.layer}", fontsize=9)
    for ax in (left, right):
        ax.axis("off")
    fig.suptitle(f"{result.model}: {Path(result.image).name}", fontsize=10)
    return fig


def format_gradcam(result: dict) -> str:
    return (f"{result['model']} on {result['image']}: class '{result['class']}' "
            f"(#{result['class_index']}, probability {result['probability']:.1%}); Grad-CAM of "
            f"layer {result['layer']} peaks at row {result['peak'][0]}, column "
            f"{result['peak'][1]} of the model's input\npicture: {result['out']}")
