"""`cnnlab explain shift|dense|border|collapse|kernel-gradient|inception`: the lectures' claims
about convolution itself, each computed and checked (course/claims_shift.py, claims_dense.py,
claims_conv.py, claims_inception.py).

Wiring only, as the rest of cli/: values are read as text and checked by the library, so a
bad number gets the same one-sentence error from the command line and from Python. Nothing
here imports torch; a command's library module is imported when that command runs.
"""
from __future__ import annotations

import argparse
import importlib
import json

from .options import options

OUT_HELP = "also draw the result (.png, .svg, .pdf)"


def add_shift_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--shifts", default="1,2,3,4", metavar="K[,K...]",
        help="pixels the digit is shifted right, for the per-layer view (default: 1,2,3,4)")
    add("--canvas", default="24", metavar="N", help="side of the training canvas (default: 24)")
    add("--train-shift", default="2", metavar="K",
        help="digits move up to K pixels either way in training (default: 2)")
    add("--epochs-scale", default="1", metavar="X", help="train X times the default epochs (default: 1)")
    add("--seed", default="0", metavar="N", help="(default: 0)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP + ": a row of feature maps per layer")


def add_dense_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--canvas", default="24", metavar="N", help="side of the canvas the 8x8 digits sit on (default: 24)")
    add("--train-shift", default="2", metavar="K",
        help="digits move up to K pixels either way in training (default: 2)")
    add("--test-shift", default="6", metavar="K",
        help="the 'moved' test set: every digit K pixels from the centre (default: 6)")
    add("--epochs-scale", default="1", metavar="X", help="train X times the default epochs (default: 1)")
    add("--seed", default="0", metavar="N", help="(default: 0)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP + ": accuracy against pixels moved")


def add_border_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--size", default="6", metavar="N|HxW", help="input height and width (default: 6)")
    add("--kernel-size", nargs="+", default=["1", "2", "3"], metavar="K",
        help="kernel sizes to compare (default: 1 2 3, as 002's picture)")
    add("--padding", default="0", metavar="P", help="zeros on each side (default: 0)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP + ": the usage map per kernel")


def add_collapse_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--size", default="12", metavar="N|HxW", help="input height and width (default: 12)")
    add("--channels", default="3,4,2", metavar="CIN,CMID,COUT",
        help="channels in, between and out (default: 3,4,2)")
    add("--kernel-size", nargs=2, default=["3", "3"], metavar="K",
        help="the two kernels' sizes (default: 3 3)")
    add("--seed", default="0", metavar="N", help="random input and kernels (default: 0)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP + ": kernels and outputs")


def add_kernel_gradient_args(parser: argparse.ArgumentParser) -> None:
    from .course import MATRIX_HELP
    add = parser.add_argument
    add("--input", default="0 1 2; 3 4 5; 6 7 8", metavar="MATRIX",
        help=f"{MATRIX_HELP} (default: 002's 3x3 input)")
    add("--kernel", default="0 1; 2 3", metavar="MATRIX", help="(default: 002's 2x2 kernel)")
    add("--grad-output", default=None, metavar="MATRIX",
        help="dL/dY, the output's shape (default: all ones, L = sum(Y))")
    add("--stride", default="1", metavar="S")
    add("--padding", default="0", metavar="P")
    add("--seed", default="0", metavar="N", help="the random batch also checked (default: 0)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP)


def add_inception_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--input", default="28x28x192", metavar="HxWxC",
        help="the module's input (default: 28x28x192, GoogLeNet's inception (3a))")
    add("--filters", default="64,128,32", metavar="N1,N3,N5",
        help="filters of the 1x1, 3x3 and 5x5 branches (default: 64,128,32)")
    add("--reductions", default="96,16", metavar="R3,R5",
        help="1x1 filters before the 3x3 and the 5x5 in (b) (default: 96,16)")
    add("--pool-proj", default="32", metavar="N", help="1x1 filters after the pool in (b) (default: 32)")
    add("--out", default=None, metavar="FILE.png", help=OUT_HELP + ": the two modules' bars")


def add_loss_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--classes", default="10", metavar="N", help="classes of the random logits (default: 10)")
    add("--epochs", default="6", metavar="N", help="epochs of each binary classifier (default: 6)")
    add("--seed", default="0", metavar="N", help="(default: 0)")


# name, argument builder, "module:function:formatter" in cnnlab.course, one line of help
EXPLAIN_CONVOLUTION = [
    ("shift", add_shift_args, "claims_shift:explain_shift:format_shift",
     "shift the image: feature maps shift with it (equivariance), a pooled network's answer "
     "does not (invariance)"),
    ("dense", add_dense_args, "claims_dense:explain_dense:format_dense",
     "one weight per pixel (linear, mlp) beside a small CNN, on digits that move"),
    ("border", add_border_args, "claims_conv:explain_border:format_border",
     "how often each input pixel is used without padding (002)"),
    ("collapse", add_collapse_args, "claims_conv:explain_collapse:format_collapse",
     "two convolutions without a non-linearity are one convolution"),
    ("kernel-gradient", add_kernel_gradient_args,
     "claims_conv:explain_kernel_gradient:format_kernel_gradient",
     "dL/dK by autograd and as the input correlated with dL/dY"),
    ("inception", add_inception_args, "claims_inception:explain_inception:format_inception",
     "GoogLeNet's naive Inception module vs the one with 1x1 reductions: parameters, multiply-adds"),
    ("loss", add_loss_args, "claims_loss:explain_loss:format_loss",
     "cross-entropy as log-softmax + NLL; one logit with BCEWithLogitsLoss beside two logits"),
]


def _runner(target: str):
    """The command for "module:function:formatter": the options in, one result out."""
    module, function, formatter = target.split(":")

    def run(args) -> int:
        library = importlib.import_module(f"cnnlab.course.{module}")
        result = getattr(library, function)(**options(args))
        if args.json:
            print(json.dumps(result))
        elif not args.quiet:
            print(getattr(library, formatter)(result))
        return 0
    return run


def add_explain_commands(how, output: argparse.ArgumentParser,
                         commands: list = EXPLAIN_CONVOLUTION) -> None:
    """`commands` (name, argument builder, target, help) under `explain`'s subcommands `how`,
    each with the output flags."""
    for name, add_args, target, about in commands:
        sub = how.add_parser(name, parents=[output], help=about)
        add_args(sub)
        sub.set_defaults(run_command=_runner(target))
