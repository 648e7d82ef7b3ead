"""`cnnlab export RUN --format onnx|torchscript|exported-program`: the model as a file for
another runtime, its preprocessing beside it, and the proof that it answers as cnnlab does."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..errors import UserError
from . import files
from .formats import FORMATS, export_bytes, reason_of
from .parity import TOLERANCE, compare
from .preprocessing import Uint8Input, describe
from .samples import parity_images
from .subject import from_pretrained, from_run


def export(run: str | None = None, format: str = "onnx", out: str | None = None,
           dynamic_batch: bool = False, uint8_input: bool = False,
           pretrained: str | None = None, weights_file: str | None = None,
           tolerance: float = TOLERANCE) -> dict:
    """Write the export and its preprocessing JSON, load the file back, compare it with
    cnnlab's model on real images; the result is what `--json` prints."""
    if format not in FORMATS:
        from ..errors import unknown_name
        raise unknown_name("export format", format, FORMATS)
    if not tolerance >= 0:  # also refuses nan
        raise UserError(f"--tolerance must be a number of at least 0, not {tolerance}.")
    if (run is None) == (pretrained is None):
        raise UserError("give a run folder, or --pretrained MODEL, to export.")
    subject = from_run(run) if run is not None else from_pretrained(pretrained, weights_file)
    chosen = FORMATS[format]
    path = files.check_out(Path(out) if out else files.default_out(
        subject, chosen.suffixes[0], uint8_input), format, chosen.suffixes)
    pixels, where = parity_images(subject)
    model = Uint8Input(subject.model, subject.preprocess.mean, subject.preprocess.std) \
        if uint8_input else subject.model
    inputs = pixels if uint8_input else subject.preprocess.normalise(pixels)
    # With a dynamic batch the example has two images (torch.export takes a batch of one as
    # a hint that the size is fixed at 1), and the check then runs all images at once.
    example = inputs[:2 if dynamic_batch else 1]
    with torch.no_grad():
        output_shape = list(model(example).shape)
    record = describe(subject, format, path.name, _shape(example, dynamic_batch),
                      _shape_list(output_shape, dynamic_batch), uint8_input)
    started = time.perf_counter()
    data = export_bytes(format, model, example, dynamic_batch, json.dumps(record), subject.name)
    seconds = time.perf_counter() - started
    files.write(path, data)
    files.write(files.sidecar(path), (json.dumps(record, indent=2) + "\n").encode())
    parity = _check(format, path, model, inputs, dynamic_batch, subject.task, tolerance)
    return {"output": str(path), "preprocessing": str(files.sidecar(path)), "format": format,
            "runtime": chosen.runtime, "source": subject.source, "model": subject.name,
            "task": subject.task, "input": record["input"], "dynamic_batch": dynamic_batch,
            "export_seconds": round(seconds, 3), "bytes": len(data),
            "parity_images": len(inputs), "parity_source": where, **parity}


def _shape(example: torch.Tensor, dynamic_batch: bool) -> list:
    return _shape_list(list(example.shape), dynamic_batch)


def _shape_list(shape: list, dynamic_batch: bool) -> list:
    return ["batch", *shape[1:]] if dynamic_batch else [1, *shape[1:]]


def _check(format: str, path: Path, model, inputs, dynamic_batch: bool, task: str,
           tolerance: float) -> dict:
    """The written file, loaded back by its runtime, against cnnlab's model."""
    runner = FORMATS[format].load(path)
    try:
        return compare(model, runner, inputs, None if dynamic_batch else 1, task, tolerance)
    except Exception as exc:  # the runtime refused the file or the batch: say which
        raise UserError(f"{path} was written, but {FORMATS[format].runtime} failed to run it "
                        f"on {len(inputs)} images: {reason_of(exc)}") from None


def format_export(result: dict) -> str:
    agreement = result["top1_agreement"]
    same = "" if agreement is None else (f"; same top-1 class for {agreement:.1%} of the "
                                         f"{result['agreement_of']}")
    if result["max_abs_diff"] is None:
        compared = f"FAILED: {result['problem']}"
    else:
        verdict = "OK" if result["parity_ok"] else f"FAILED (tolerance {result['tolerance']:g})"
        compared = (f"max abs difference {result['max_abs_diff']:.2e} (outputs up to "
                    f"{result['max_abs_output']:.3g}){same}: {verdict}")
    return "\n".join([
        f"{result['format']}: {result['output']} ({result['bytes'] / 1e6:.1f} MB, exported "
        f"in {result['export_seconds']:.1f} s)",
        f"preprocessing: {result['preprocessing']} (input {result['input']['dtype']} "
        f"{' x '.join(str(d) for d in result['input']['shape'])})",
        f"parity on {result['parity_source']} with {result['runtime']}: {compared}"])
