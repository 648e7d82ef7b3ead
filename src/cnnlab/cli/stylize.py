"""Arguments of `cnnlab stylize`: neural style transfer (Gatys, Ecker & Bethge 2016).

Kept out of main.py so it stays wiring; the defaults come from cnnlab.stylize.DEFAULTS, which
imports no torch.
"""
from __future__ import annotations

import argparse


from ..course.kernels import sample_names
from ..stylize import DEFAULTS




def add_stylize_args(parser: argparse.ArgumentParser) -> None:
    d, add = DEFAULTS, parser.add_argument
    parser.description = (
        "Neural style transfer (Gatys, Ecker & Bethge 2016): the pixels of a picture, "
        "starting from CONTENT itself, are optimised so a frozen ImageNet network sees "
        "CONTENT's features in a deep layer and STYLE's Gram matrices in five layers. "
        "Writes runs/<time>-stylize-CONTENT-STYLE/: result.png, sheet.png (content | style | "
        "result), curves.png (both losses per step) and stylize.json (the numbers).")
    picture = (" (an image file, or sample:NAME for a shipped photograph: "
               + ", ".join(sample_names()) + ")")
    add("content", metavar="CONTENT", help="the picture whose content is kept" + picture)
    add("style", metavar="STYLE", help="the picture whose style is taken, e.g. sample:coffee")
    add("--out", metavar="FILE", help="also write the result here (.png or .jpg); it is "
        "always in the run folder runs/<time>-stylize-CONTENT-STYLE/ as result.png")
    add("--steps", type=int, default=d["steps"], metavar="N",
        help=f"evaluations of loss and gradient (default: {d['steps']})")
    add("--size", type=int, default=d["size"], metavar="PX",
        help=f"longer side of the pictures, in pixels (default: {d['size']})")
    add("--style-weight", type=float, default=d["style_weight"], metavar="W",
        help=f"weight of the style loss (default: {d['style_weight']:g}); higher: more style")
    add("--content-weight", type=float, default=d["content_weight"], metavar="W",
        help=f"weight of the content loss (default: {d['content_weight']:g})")
    add("--tv-weight", type=float, default=d["tv_weight"], metavar="W",
        help=f"weight of the total variation, a smoothness prior (default: {d['tv_weight']:g})")
    add("--optimizer", default=d["optimizer"], metavar="lbfgs|adam",
        help=f"L-BFGS as in the paper, or Adam (default: {d['optimizer']})")
    add("--backbone", default=d["backbone"], metavar="NAME",
        help=f"efficientnet_lite0 (weights ship with cnnlab, works offline) or vgg19 (the "
             f"paper's; needs --weights or --weights-file) (default: {d['backbone']})")
    add("--pooling", default=d["pooling"], metavar="max|avg",
        help="vgg19: average pooling instead of max, as the paper suggests (default: max)")
    add("--weights", metavar="torchvision",
        help="vgg19: torchvision's ImageNet weights, from torch's cache or downloaded once")
    add("--weights-file", metavar="FILE",
        help="the backbone's weights from this file (vgg19: a torchvision vgg19 state dict)")
    add("--device", default="auto")
