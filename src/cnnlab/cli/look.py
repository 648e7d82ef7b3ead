"""Arguments of the commands that look inside a network: featuremaps, filters, gradcam,
receptive-field and report. Kept out of main.py so it stays wiring.

featuremaps, filters and gradcam look at a trained run or, with --pretrained NAME, at an
ImageNet model; with --pretrained the run folder is not given, so the first positional
argument is the image (as `cnnlab predict --pretrained` reads it).
"""
from __future__ import annotations

import argparse

from ..errors import UserError


def subject_options(args: argparse.Namespace, wants_image: bool = True) -> dict:
    """run, image, sample, pretrained, weights_file and device from the positionals and flags."""
    given = [v for v in (args.source, getattr(args, "image", None)) if v is not None]
    options = {"pretrained": args.pretrained, "weights_file": args.weights_file,
               "device": args.device}
    if args.pretrained is None:
        if not given:
            raise UserError("give a run folder (written by cnnlab train) or --pretrained MODEL.")
        options["run"], given = given[0], given[1:]
    if wants_image:
        options["sample"] = args.sample
        if len(given) > 1:
            raise UserError("give one image; with --pretrained there is no run folder before it.")
        options["image"] = given[0] if given else None
    elif given:
        raise UserError(f"give a run folder or --pretrained MODEL, not both ('{given[0]}' "
                        "was given too).")
    return options


def _subject_args(parser: argparse.ArgumentParser, image: bool = True) -> None:
    add = parser.add_argument
    add("source", nargs="?", metavar="RUN", help="run folder written by cnnlab train"
        + (" (with --pretrained: the image)" if image else ""))
    if image:
        add("image", nargs="?", metavar="IMAGE", help="image file (any format Pillow reads)")
        add("--sample", metavar="NAME", help="a photograph shipped offline instead of IMAGE "
            "(chelsea, coffee, astronaut, ...: see cnnlab kernels --help)")
    add("--pretrained", metavar="MODEL", help="an ImageNet model instead of a run, e.g. "
        "efficientnet_lite0 (works offline)")
    add("--weights-file", help="with --pretrained: its weights from this file")
    add("--device", default="auto")


def add_featuremaps_args(parser: argparse.ArgumentParser) -> None:
    _subject_args(parser)
    parser.add_argument("--layer", action="append", dest="layers", metavar="NAME",
                        help="a layer to show (repeat for more; names as `cnnlab summary` "
                             "lists them); default: every convolution stage")
    parser.add_argument("--channels", type=int, default=16,
                        help="maps shown per layer, the strongest when there are more "
                             "(default: 16)")
    parser.add_argument("--out", metavar="FILE", help="picture to write (default: "
                        "featuremaps-IMAGE.png; .png, .svg, .pdf or .jpg)")


def add_filters_args(parser: argparse.ArgumentParser) -> None:
    _subject_args(parser, image=False)
    parser.add_argument("--layer", metavar="NAME", help="a convolution (default: the first)")
    parser.add_argument("--out", metavar="FILE",
                        help="picture to write (default: filters-LAYER.png)")


def add_gradcam_args(parser: argparse.ArgumentParser) -> None:
    _subject_args(parser)
    parser.add_argument("--class", dest="target", metavar="K",
                        help="class name or number to explain (default: the top prediction)")
    parser.add_argument("--layer", metavar="NAME",
                        help="convolutional layer (default: the last convolution stage)")
    parser.add_argument("--out", metavar="FILE",
                        help="picture to write (default: gradcam-IMAGE.png)")


def add_receptive_field_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("model", metavar="MODEL", help="a registered model name, module:attribute of an "
        "nn.Module (as for cnnlab summary), or a run folder")
    add("--layer", required=True, metavar="NAME", help="the layer whose unit to show")
    add("--unit", metavar="ROW,COL", help="the unit in the layer's output (default: the centre)")
    add("--image", metavar="IMAGE", help="draw on this image (default: a plain background)")
    add("--sample", metavar="NAME", help="draw on a shipped photograph instead")
    add("--input", metavar="CxHxW", help="input shape (default: the model's own)")
    add("--out", metavar="FILE", help="picture to write (default: receptive-field-LAYER.png)")


def add_report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by cnnlab train")
    parser.add_argument("--out", metavar="FILE.html", help="default: RUN/report.html")
    parser.add_argument("--device", default="auto")
