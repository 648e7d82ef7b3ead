"""Arguments of `cnnlab export`: a run (or a pretrained model) as an ONNX, TorchScript or
ExportedProgram file, checked against cnnlab's own answers.

Kept out of main.py so it stays wiring; the format names come from cnnlab.export, which
imports no torch.
"""
from __future__ import annotations

import argparse


from ..export import SUFFIXES




def add_export_args(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    parser.description = (
        "Write the model as a file another runtime loads, and its preprocessing beside it as "
        "FILE.preprocess.json (resize, crop, mean, std, channel order, class names). The "
        "written file is then loaded back and run beside cnnlab's model on real images (the "
        "run's test images, or photographs shipped with scikit-image); the largest output "
        "difference and the top-1 agreement are printed. Exit status 1 when they miss the "
        "tolerance. A file an earlier export wrote is replaced; any other is not.")
    add("run", metavar="RUN", nargs="?", help="run folder written by cnnlab train")
    add("--format", default="onnx", choices=tuple(SUFFIXES),
        help="onnx (run by ONNX Runtime; needs the export extra: pip install "
             "'cnnlab[export]'), torchscript (torch.jit.trace; deprecated by PyTorch, for "
             "LibTorch programs) or exported-program (torch.export, .pt2) (default: onnx)")
    add("--out", metavar="FILE", help="where the model goes (default: RUN/model.onnx, .pt or "
        ".pt2; with --pretrained, MODEL.onnx etc. here)")
    add("--dynamic-batch", action="store_true",
        help="the file takes any number of images at once (default: exactly one)")
    add("--uint8-input", action="store_true",
        help="bake the normalisation in: the file takes uint8 pixels at the model's size, "
             "so a caller only decodes and resizes")
    add("--pretrained", metavar="MODEL",
        help="export this pretrained ImageNet classifier instead of a run, e.g. "
             "efficientnet_lite0")
    add("--weights-file", help="with --pretrained: its weights from this file")
    add("--tolerance", type=float, default=1e-4, metavar="T",
        help="the largest output difference the parity check accepts, times the largest "
             "output where that exceeds 1 (default: 1e-4)")
