"""Arguments of the commands that explain convolution: conv-shape, summary, explain, kernels.

Kept out of main.py so it stays wiring. Every value is read as text and checked by the library,
so a bad number gets the same one-sentence error from the command line and from Python.
"""
from __future__ import annotations

import argparse


def add_conv_shape_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--input-size", required=True, metavar="N|HxW", help="input height and width, e.g. 32 or 32x24")
    add("--kernel-size", default="3", metavar="K|KHxKW", help="kernel (or pooling window) size (default: 3)")
    add("--stride", default=None, metavar="S|SHxSW", help="default: 1, or the window size for pooling")
    add("--padding", default="0", metavar="P|PHxPW|same|valid|L,R,T,B",
        help="zeros added on each side; 'same' keeps the size; four numbers give left,right,top,bottom")
    add("--dilation", default="1", metavar="D", help="spacing between kernel taps (default: 1)")
    add("--groups", default="1", metavar="G", help="channel groups (default: 1)")
    add("--in-channels", default="1", metavar="C", help="input channels (default: 1)")
    add("--out-channels", default="1", metavar="K", help="output channels, i.e. kernels (default: 1)")
    add("--transposed", action="store_true", help="a transposed convolution (ConvTranspose2d)")
    add("--output-padding", default="0", metavar="OP", help="extra bottom/right rows of a transposed output")
    add("--pool", default=None, metavar="max|avg", help="a pooling layer instead of a convolution")
    add("--ceil-mode", action="store_true", help="pooling rounds the window count up (PyTorch's ceil_mode)")
    add("--no-bias", dest="bias", action="store_false", help="a convolution without bias terms")


def add_summary_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a registered model name, or module:attribute of an nn.Module, its class "
                             "or a factory (e.g. torchvision.models:resnet18; built without weights)")
    parser.add_argument("--input", default=None, metavar="CxHxW",
                        help="input shape (default: the model's own, or 3x224x224)")


MATRIX_HELP = "numbers with rows separated by ';' and channels by '|', e.g. '1 2; 3 4 | 5 6; 7 8'"


def add_explain_conv_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--input", required=True, metavar="MATRIX", help=MATRIX_HELP)
    add("--kernel", required=True, action="append", metavar="NAME|MATRIX",
        help="a kernel name (sobel-y, laplacian, ...) or values; one matrix per input channel "
             "separated by '|', or one used for all; repeat --kernel for more output channels")
    add("--stride", default="1", metavar="S|SHxSW")
    add("--padding", default="0", metavar="P|PHxPW|same|L,R,T,B")
    add("--padding-mode", default="zeros", metavar="MODE", help="zeros, constant, reflect, replicate or circular")
    add("--pad-value", default="0", metavar="V", help="the value --padding-mode constant pads with")
    add("--dilation", default="1", metavar="D")
    add("--transposed", action="store_true", help="a transposed convolution, shown as scattered stamps")
    add("--output-padding", default="0", metavar="OP")
    add("--bias", default=None, metavar="B", help="one bias per output channel, e.g. '1 -2'")


def add_explain_pool_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--input", required=True, metavar="MATRIX", help=MATRIX_HELP)
    add("--kernel-size", default="2", metavar="K|KHxKW", help="pooling window (default: 2)")
    add("--stride", default=None, metavar="S", help="default: the window size, as in PyTorch")
    add("--padding", default="0", metavar="P")
    add("--mode", default="max", metavar="max|avg")
    add("--dilation", default="1", metavar="D", help="max pooling only")
    add("--ceil-mode", action="store_true", help="round the window count up (PyTorch's ceil_mode)")
    add("--exclude-pad", dest="count_include_pad", action="store_false",
        help="average over real cells only (count_include_pad=False)")


def add_kernels_args(parser: argparse.ArgumentParser) -> None:
    from ..course.kernels import KERNELS, sample_names
    add = parser.add_argument
    add("image", nargs="?", default=None, metavar="IMAGE", help="an image file")
    add("--sample", default=None, metavar="NAME", help="a shipped photograph: " + ", ".join(sample_names()))
    add("--kernel", required=True, metavar="NAME|MATRIX", help="one of " + ", ".join(KERNELS) + "; or values like '1 0 -1; 2 0 -2; 1 0 -1'")
    add("--out", default=None, metavar="FILE", help="picture to write (default: kernel_NAME.png)")
    add("--padding-mode", default="reflect", metavar="MODE", help="zeros, reflect, replicate or circular (default: reflect)")
