"""`cnnlab explain depth|batchnorm|transfer-depth`: the lectures' claims about training deep
networks, each shown by a short experiment (course/claims_depth.py, claims_batchnorm.py,
claims_transfer.py).

Wiring only, as the rest of cli/: values are read as text and checked by the library, so a
bad number gets the same one-sentence error from the command line and from Python. Nothing
here imports torch; a command's library module is imported when that command runs.
"""
from __future__ import annotations

import argparse

from . import claims


def add_depth_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--depth", default="20", metavar="20|32|44|56",
        help="layers of both networks, plainN and resnetN (default: 20)")
    add("--steps", default="100", metavar="N", help="SGD steps each network trains (default: 100)")
    add("--batch-size", default="32", metavar="N", help="digits per step (default: 32)")
    add("--lr", default="0.1", metavar="RATE", help="SGD rate, momentum 0.9, as He et al. (default: 0.1)")
    add("--seed", default="0", metavar="N", help="the same weights and batches for both (default: 0)")
    add("--out", default=None, metavar="FILE.png", help="also draw the gradient norms per layer and step")


def add_batchnorm_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--depth", default="20", metavar="N", help="3x3 convolutions in the stack (default: 20)")
    add("--steps", default="30", metavar="N", help="SGD steps before the second look (default: 30)")
    add("--batch-size", default="64", metavar="N", help="digits per step (default: 64)")
    add("--lr", default="0.05", metavar="RATE", help="SGD rate, momentum 0.9 (default: 0.05)")
    add("--seed", default="0", metavar="N", help="the same weights and batches for both (default: 0)")
    add("--out", default=None, metavar="FILE.png", help="also draw each layer's mean and spread")


def add_transfer_depth_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--datasets", default="digits,lfw-faces", metavar="NAME[,NAME]",
        help="built-in data sets to transfer to (default: digits,lfw-faces: far from ImageNet's "
             "photographs, and photographs of faces)")
    add("--image-size", default="64", metavar="N",
        help="pixels on a side the images are resized to for the backbone (default: 64)")
    add("--limit", default="0", metavar="N", help="use at most N images of each data set (0: all)")
    add("--head", default="linear", metavar="linear|mlp",
        help="the classifier trained on each cut point's features: linear, or mlp (one hidden "
             "layer of 256, 003's 'add new layers') (default: linear)")
    add("--epochs", default="100", metavar="N", help="full-batch epochs of the classifier (default: 100)")
    add("--seed", default="0", metavar="N", help="(default: 0)")
    add("--out", default=None, metavar="FILE.png", help="also draw accuracy against the cut point")


# name, argument builder, "module:function:formatter" in cnnlab.course, one line of help
EXPLAIN_TRAINING = [
    ("depth", add_depth_args, "claims_depth:explain_depth:format_depth",
     "plainN beside resnetN: per-layer gradient norms while training, accuracy after the same budget"),
    ("batchnorm", add_batchnorm_args, "claims_batchnorm:explain_batchnorm:format_batchnorm",
     "activation mean and spread per layer with and without batch norm (004's [-2, 2])"),
    ("transfer-depth", add_transfer_depth_args,
     "claims_transfer:explain_transfer_depth:format_transfer_depth",
     "efficientnet_lite0 cut after each stage: where ImageNet features stop being generic"),
]


def add_explain_commands(how, output: argparse.ArgumentParser) -> None:
    """These commands under `explain`'s subcommands `how`, each with the output flags."""
    claims.add_explain_commands(how, output, EXPLAIN_TRAINING)
