"""ZFNet (Zeiler & Fergus 2014, 'Visualizing and understanding convolutional networks'):
AlexNet, re-tuned by looking at what its filters learned (003):

    conv1: 7x7 stride 2 instead of 11x11 stride 4 (the big stride was aliasing features away)
    conv3, conv4, conv5: 512, 1024, 512 filters instead of 384, 384, 256

Single GPU, so no grouped convolutions; LRN (the paper's 'contrast normalisation') and
overlapping pooling as in AlexNet. Sizes follow the paper: 224 -> 110 -> 55 -> 26 -> 13 -> 6.
"""
from __future__ import annotations

from .alexnet import AlexNet, ConvSpec
from .base import IMAGENET
from .registry import register_model

ZFNET = [ConvSpec(96, 7, 2, 1, lrn=True, pool=1),
         ConvSpec(256, 5, 2, 0, lrn=True, pool=1),
         ConvSpec(512, 3, 1, 1),
         ConvSpec(1024, 3, 1, 1),
         ConvSpec(512, 3, 1, 1, pool=0)]


@register_model(family="alexnet", architecture=AlexNet, small_input_size=(3, 16, 16), **IMAGENET,
                paper="Zeiler & Fergus 2014, Visualizing and understanding convolutional networks")
def zfnet(**kwargs):
    return AlexNet(ZFNET, **kwargs)
