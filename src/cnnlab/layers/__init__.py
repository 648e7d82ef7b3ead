"""Layers: every convolution kind, pooling and normalisation the lectures teach.

    conv.py     standard, strided, padded (any mode), dilated, grouped, depthwise, pointwise,
                transposed, spatially separable, depthwise-separable, deformable
    pooling.py  max, average, global average, adaptive
    norm.py     batch, layer, instance, group, switchable, weight norm, LRN; a factory by name
    blocks.py   activations by name, ConvNormAct
"""
from .blocks import ACTIVATIONS, ConvNormAct, make_activation
from .conv import (CONVOLUTIONS, DeformableConv2d, DepthwiseSeparableConv2d, PaddedConv2d,
                   SpatiallySeparableConv2d, depthwise_conv, dilated_conv, grouped_conv,
                   make_conv, pointwise_conv, same_padding, standard_conv, strided_conv,
                   transposed_conv)
from .norm import (NORMS, LayerNorm2d, LocalResponseNorm, SwitchableNorm2d, group_count,
                   make_norm, norm_layer, weight_norm)
from .pooling import (POOLS, GlobalAvgPool2d, adaptive_avg_pool, adaptive_max_pool, avg_pool,
                      make_pool, max_pool)

__all__ = [
    "ACTIVATIONS", "CONVOLUTIONS", "NORMS", "POOLS", "ConvNormAct", "DeformableConv2d",
    "DepthwiseSeparableConv2d", "GlobalAvgPool2d", "LayerNorm2d", "LocalResponseNorm",
    "PaddedConv2d", "SpatiallySeparableConv2d", "SwitchableNorm2d", "adaptive_avg_pool",
    "adaptive_max_pool", "avg_pool", "depthwise_conv", "dilated_conv", "group_count",
    "grouped_conv", "make_activation", "make_conv", "make_norm", "make_pool", "max_pool",
    "norm_layer", "pointwise_conv", "same_padding", "standard_conv", "strided_conv",
    "transposed_conv", "weight_norm",
]
