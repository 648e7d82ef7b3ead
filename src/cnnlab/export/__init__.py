"""`cnnlab export`: a trained run (or a pretrained ImageNet model) as a file another runtime
loads without cnnlab: ONNX for ONNX Runtime and most inference engines, TorchScript for
LibTorch in C++, and torch.export's ExportedProgram (.pt2) for PyTorch's own deployment
paths (AOTInductor, ExecuTorch).

A model file alone does not reproduce a prediction: the image must reach it resized,
cropped and normalised exactly as in training. So every export writes that recipe beside the
model (<file>.preprocess.json, and inside the file's own metadata), and then proves the
export right: the written file is loaded back, run on real images beside cnnlab's model, and
the largest difference of their outputs and how often they pick the same class are reported.

    formats.py        one writer and one loader per format
    preprocessing.py  the run's preprocessing as JSON; the normalisation baked in for uint8 input
    samples.py        the real images the check runs on
    parity.py         exported vs original on those images
    files.py          where the files go, and which existing files may be replaced
    command.py        the command itself

This module imports nothing heavy, so `cnnlab export --help` stays fast.
"""
from __future__ import annotations

# Format name -> the file suffix it gets by default.
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}
