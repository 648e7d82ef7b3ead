"""Neural style transfer (Gatys, Ecker & Bethge 2016, 'Image style transfer using
convolutional neural networks'): a picture with the content of one image -- the features of
a deep layer -- and the style of another -- the correlations between the channels of several
layers (their Gram matrices) -- found by optimising the pixels against a frozen ImageNet CNN.

command.stylize is `cnnlab stylize`: it reads the two pictures (files, or sample:NAME), runs the
optimisation (optimise.py) on the layers extractors.py names, and writes a run folder
(outputs.py). The losses are in losses.py.
"""
from __future__ import annotations

# The defaults, chosen on 2 CPU cores (README gives the measured time and losses). Kept here,
# free of torch, so the command's --help can show them without loading it.
DEFAULTS = dict(steps=100, size=256, style_weight=100.0, content_weight=1.0, tv_weight=0.0,
                optimizer="lbfgs", backbone="efficientnet_lite0", pooling="max")
