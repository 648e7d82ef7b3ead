"""One writer and one loader per export format.

A writer turns a model and an example input into the file's bytes (the caller writes them
atomically); a loader turns the written file back into a function from a batch to the
output, run by the format's own runtime, so that the parity check tests the file a user gets.

- onnx: torch.onnx.export with the exporter PyTorch recommends and uses by default since 2.9,
  the one built on torch.export (dynamo=True), which needs the packages onnx and onnxscript;
  the file is run back with ONNX Runtime. Weights stay inside the one .onnx file.
- torchscript: torch.jit.trace (script would need every model annotated for TorchScript's
  subset of Python); PyTorch has deprecated TorchScript in favour of torch.export, and it is
  offered for LibTorch programs that still load it.
- exported-program: torch.export.export, saved with torch.export.save (.pt2), loaded back with
  torch.export.load; the form AOTInductor and ExecuTorch start from.
With a dynamic batch the file takes any number of images; otherwise exactly one at a time.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import UserError

MARK_FILE = "cnnlab.json"  # the preprocessing JSON inside a .pt / .pt2 archive
MARK_KEY = "cnnlab"        # ... and under this key of an ONNX file's metadata_props
MAX_BATCH = 4096           # torch.export wants a range for a dynamic dimension
INSTALL = "pip install 'cnnlab[export]'"


@dataclass(frozen=True)
class Format:
    suffixes: tuple[str, ...]   # the first is the default
    write: Callable[[nn.Module, torch.Tensor, bool, str], bytes]
    load: Callable[[Path], Callable[[torch.Tensor], torch.Tensor]]
    runtime: str


def _batch_dims(example: torch.Tensor, dynamic_batch: bool):
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},) if dynamic_batch else None


def write_onnx(model, example, dynamic_batch: bool, metadata: str) -> bytes:
    _needs("onnx", "onnxscript")
    import onnx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"],
                                    output_names=["output"], external_data=False,
                                    dynamic_shapes=_batch_dims(example, dynamic_batch),
                                    verbose=False, report=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {MARK_KEY: metadata})
    return proto.SerializeToString()


def load_onnx(path: Path):
    _needs("onnxruntime")
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(["output"], {"input": batch.numpy()})[0])


def write_torchscript(model, example, dynamic_batch: bool, metadata: str) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # PyTorch's deprecation notice, and tracer notes on Python numbers (such as 'same'
        # padding) that become constants: right at the fixed image size the file takes.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)  # parity checks it better
        torch.jit.save(traced, buffer, _extra_files={MARK_FILE: metadata})
    return buffer.getvalue()


def load_torchscript(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return module


def write_exported_program(model, example, dynamic_batch: bool, metadata: str) -> bytes:
    program = torch.export.export(model, (example,),
                                  dynamic_shapes=_batch_dims(example, dynamic_batch))
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={MARK_FILE: metadata})
    return buffer.getvalue()


def load_exported_program(path: Path):
    return torch.export.load(str(path)).module()


FORMATS = {
    "onnx": Format((".onnx",), write_onnx, load_onnx, "ONNX Runtime (CPU)"),
    "torchscript": Format((".pt", ".pth", ".ts"), write_torchscript, load_torchscript,
                          "torch.jit.load"),
    "exported-program": Format((".pt2",), write_exported_program, load_exported_program,
                               "torch.export.load"),
}


def _needs(*packages: str) -> None:
    import importlib.util
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ONNX export needs the package{'s' * (len(missing) > 1)} "
                        f"{' and '.join(missing)}: {INSTALL}.")


def export_bytes(fmt: str, model: nn.Module, example: torch.Tensor, dynamic_batch: bool,
                 metadata: str, name: str) -> bytes:
    """The file's bytes, or a UserError naming what the format could not express."""
    try:
        with torch.no_grad():
            return FORMATS[fmt].write(model, example, dynamic_batch, metadata)
    except UserError:
        raise
    except Exception as exc:  # the exporters raise many kinds; the user needs the reason
        raise UserError(f"{fmt} cannot express {name}: {reason_of(exc)}") from None


def reason_of(exc: BaseException) -> str:
    """The innermost error's first line: the exporters wrap the real cause in advice."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    line = next((s.strip() for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
    return (line[:300] + "...") if len(line) > 300 else line.rstrip(".") + "."
