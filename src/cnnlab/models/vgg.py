"""VGG (Simonyan & Zisserman 2015), as the 003 slides write it: configuration lists A, B, D, E.

Only 3x3 convolutions (stride 1, padding 1) and 2x2 max-pools: two stacked 3x3 layers see a 5x5
field and three see 7x7, with fewer parameters and more non-linearities than one big kernel.
A number is a convolution with that many filters, "M" a max-pool. `_bn` variants put batch
normalisation after every convolution; `norm=` picks any other (group, layer, switchable ...).
Module names and the weight initialisation are torchvision's, so its weights load.
"""
from __future__ import annotations

from torch import nn

from ..layers import GlobalAvgPool2d, make_norm
from .base import IMAGENET, FeaturesHeadModel, check_stem
from .registry import register_model

CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                  # 11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],          # 13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],                                                               # 16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],                                                          # 19
}
SMALL_HIDDEN = 512  # for 32x32 inputs the five pools leave 1x1: 512 numbers need no 4096


def make_layers(cfg: list, in_channels: int = 3, norm: str = "none") -> nn.Sequential:
    """The slide's make_layers, with the norm chosen by name ("none" is plain VGG)."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        # The convolution keeps its bias even before a norm: that is torchvision's layout.
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if norm != "none":
            layers.append(make_norm(norm, v))
        layers.append(nn.ReLU())  # not in-place, so hooks on the layer before see its output
        in_channels = v
    return nn.Sequential(*layers)


def classifier(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes))


class VGG(FeaturesHeadModel):
    """`features`, `avgpool` (7x7), `classifier` -- the slide's class and torchvision's names.

    stem="small" is for small inputs (32x32 at least: five 2x2 pools take 32 to 1): the
    convolutions are unchanged, but the head pools to 1x1 and uses 512-wide dense layers, as
    CIFAR-10 versions of VGG do, instead of copying one pixel 49 times into a 25,088-input layer.
    """

    def __init__(self, cfg: list, /, num_classes: int = 1000, in_channels: int = 3,
                 norm: str = "none", dropout: float = 0.5, stem: str = "imagenet"):
        super().__init__()
        small = check_stem(stem)
        self.features = make_layers(cfg, in_channels, norm)
        self.avgpool = GlobalAvgPool2d(flatten=False) if small else nn.AdaptiveAvgPool2d(7)
        width = cfg[-2]
        self.classifier = (classifier(width, SMALL_HIDDEN, num_classes, dropout) if small
                           else classifier(width * 7 * 7, 4096, num_classes, dropout))
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        """The slide's initialisation: He (fan-out) for convolutions, N(0, 0.01) for dense."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_head(self, features):
        return self.classifier(self.avgpool(features).flatten(1))


def _vgg(cfg: str, batch_norm: bool = False, norm: str | None = None, **kwargs) -> VGG:
    return VGG(CFGS[cfg], norm=norm or ("batch" if batch_norm else "none"), **kwargs)


_VGG = dict(family="vgg", architecture=VGG, torchvision={}, small_input_size=(3, 32, 32),
            **IMAGENET,
            paper="Simonyan & Zisserman 2015, Very deep convolutional networks for large-scale "
                  "image recognition")


@register_model(**_VGG)
def vgg11(**kw):
    return _vgg("A", **kw)


@register_model(**_VGG)
def vgg13(**kw):
    return _vgg("B", **kw)


@register_model(**_VGG)
def vgg16(**kw):
    return _vgg("D", **kw)


@register_model(**_VGG)
def vgg19(**kw):
    return _vgg("E", **kw)


@register_model(**_VGG)
def vgg11_bn(**kw):
    return _vgg("A", batch_norm=True, **kw)


@register_model(**_VGG)
def vgg13_bn(**kw):
    return _vgg("B", batch_norm=True, **kw)


@register_model(**_VGG)
def vgg16_bn(**kw):
    return _vgg("D", batch_norm=True, **kw)


@register_model(**_VGG)
def vgg19_bn(**kw):
    return _vgg("E", batch_norm=True, **kw)
