"""Grad-CAM: where in the image the evidence for a class lies.

Selvaraju et al. 2017, 'Grad-CAM: visual explanations from deep networks via gradient-based
localization'. For class c and the K feature maps A^k of a convolutional layer:

    alpha_k = mean over positions (i, j) of  d y_c / d A^k_ij   (how much map k matters for c)
    L_c     = ReLU( sum_k alpha_k A^k )                          (only evidence *for* c)

upsampled to the input's size. The paper uses the last convolutional layer: its maps are the
most abstract that still know where things are. The layer's output is caught with a forward
hook and y_c differentiated with respect to it; nothing in the model is changed.

A segmenter scores every pixel, so y_c is the sum of class c's scores over the pixels it
predicts as c (Vinogradova, Dibrov & Myers 2020, 'Towards interpretable semantic
segmentation via gradient-weighted class activation mapping'): the map then says what the
network looked at to paint that region. Its default layer is the deepest one (the smallest
maps: U-Net's bottom, DeepLabV3's backbone), the most abstract, as in the paper.
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
    probability: float      # a segmenter's: the mean over the region it paints the class
    heatmap: np.ndarray     # H x W at the model's input size, in [0, 1] (1 at the peak)
    picture: np.ndarray     # the heat map over the image, H x W x 3, as drawn
    region_pixels: int | None = None  # a segmenter's: pixels predicted as the class

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the hottest input pixel."""
        return tuple(int(v) for v in np.unravel_index(self.heatmap.argmax(), self.heatmap.shape))

    def to_dict(self) -> dict:
        return {"out": str(self.out), "image": self.image, "model": self.model,
                "layer": self.layer, "class": self.class_name, "class_index": self.class_index,
                "probability": self.probability, "peak": list(self.peak),
                "region_pixels": self.region_pixels}


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


def _region(scores: torch.Tensor, wanted, names: list[str]) -> tuple[int, torch.Tensor]:
    """A segmenter's class (--class, or the one it paints most, background last) and the
    pixels it predicts as that class (all pixels where it predicts none)."""
    predicted = scores.argmax(dim=0)
    if wanted is None:
        counts = torch.bincount(predicted.flatten(), minlength=len(names))
        if len(names) > 1 and counts[1:].any():
            counts[0] = 0  # class 0 is the background by convention (VOC, masks:PATH)
        index = int(counts.argmax())
    else:
        index = class_index(wanted, names, scores.mean(dim=(1, 2)))
    region = predicted == index
    return index, region if region.any() else torch.ones_like(region)


def grad_cam(model, x: torch.Tensor, layer: str, wanted=None, classes=None
             ) -> tuple[np.ndarray, int, float, int | None]:
    """(heat map at x's size in [0, 1], class index, its probability, the pixels of its
    region for a segmenter, else None) for the one image in x."""
    with captured(model, [layer], keep_graph=True) as outputs, torch.enable_grad():
        # The input asks for a gradient so that frozen layers (transfer learning) still
        # connect the class score to the hooked maps.
        logits = model.eval()(x.detach().requires_grad_(True))
    maps = outputs.get(layer)
    if maps is None or maps.dim() != 4:
        raise UserError(f"layer '{layer}' gives no feature maps to explain; Grad-CAM needs a "
                        "convolutional layer.")
    if not isinstance(logits, torch.Tensor):
        raise UserError("Grad-CAM explains a class score per image or per pixel; this model "
                        "answers with a list of detections (look at it with featuremaps).")
    names = classes or [str(i) for i in range(logits.shape[1])]
    pixels = None
    if logits.dim() == 4:  # a score per class and pixel
        index, region = _region(logits[0].detach(), wanted, names)
        score, pixels = logits[0, index][region].sum(), int(region.sum())
        probability = float(logits[0].detach().softmax(dim=0)[index][region].mean())
    else:
        index = class_index(wanted, names, logits[0])
        score = logits[0, index]
        probability = float(logits[0].detach().softmax(dim=0)[index])
    gradient, = torch.autograd.grad(score, maps)
    alpha = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().float().cpu()
    top = float(cam.max())
    heat = (cam / top if top > 0 else torch.zeros_like(cam)).numpy()
    return heat, index, probability, pixels


def default_layer(model, x: torch.Tensor) -> str:
    """The model's own choice (a segmenter names its deepest maps as cam_layer), else the
    last convolution stage."""
    chosen = getattr(model, "cam_layer", None)
    if chosen is not None:
        return chosen
    stages = conv_stages(model, x)
    if not stages:
        raise UserError("the model has no convolution stage; name a layer with --layer.")
    return stages[-1]


def gradcam(run: str | None = None, image: str | None = None, *, pretrained: str | None = None,
            sample: str | None = None, target: str | None = None, layer: str | None = None,
            out: str | None = None, device: str = "auto",
            weights_file: str | None = None) -> GradCam:
    """`cnnlab gradcam (RUN | --pretrained NAME) IMAGE [--class K] [--layer NAME] [--out FILE]`."""
    subject = load_subject(run, pretrained, weights_file, device)
    shown, x = subject.prepare(read_image(image, sample))
    if layer is None:
        layer = default_layer(subject.model, x)
    heat, index, probability, pixels = grad_cam(subject.model, x, layer, target,
                                                subject.classes)
    picture = overlay(image_to_float(shown.cpu()), heat)
    label = str(image if image is not None else sample)
    result = GradCam(None, label, subject.name, layer, index, subject.classes[index],
                     probability, heat, picture, pixels)
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
    region = ("" if result.get("region_pixels") is None
              else f" over the {result['region_pixels']} pixels it paints that class")
    return (f"{result['model']} on {result['image']}: class '{result['class']}' "
            f"(#{result['class_index']}, probability {result['probability']:.1%}{region}); "
            f"Grad-CAM of "
            f"layer {result['layer']} peaks at row {result['peak'][0]}, column "
            f"{result['peak'][1]} of the model's input\npicture: {result['out']}")
