"""Number formats for training: float32, or mixed precision where the hardware computes it.

Under mixed precision, convolutions and matrix products run in a 16-bit format inside
torch.autocast, while the weights, the optimiser's state and the loss stay float32:
- bf16 keeps float32's exponent range, so gradients need no scaling. The default on GPUs
  that have it (NVIDIA Ampere and later).
- fp16 has a narrow range: small gradients would round to 0, so the loss is scaled up before
  backward and the gradients down before the step (GradScaler), which also skips a step whose
  gradients overflowed. The default on older GPUs.
- On a CPU, bf16 pays only where the CPU multiplies bf16 natively (AVX512-BF16 or AMX);
  elsewhere every operation converts in software and a step is about 20x slower, so it is
  refused rather than silently slow. Where it is native, 'auto' times both formats and
  keeps bf16 only for models it clearly speeds up (fastpath.py).
"""
from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch

from ..errors import UserError
from ..logs import LOGGER

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 multiply instructions (x86 AVX512-BF16 / AMX, Arm BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch 2.6 and later
    if capabilities is not None and platform.machine().lower() in ("x86_64", "amd64"):
        found = capabilities()
        return bool(found.get("avx512_bf16") or found.get("amx_bf16"))
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})  # "bf16": Arm's feature name


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' becomes what pays on `device`; an explicit choice is checked against it."""
    if name not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {name!r}.")
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp32" or device.type == "cuda":
        return name
    if device.type == "cpu" and name == "bf16":
        if not cpu_has_native_bf16():
            raise UserError("--precision bf16 needs a CPU with native bf16 (AVX512-BF16 or "
                            "AMX), which this one lacks, so it would run about 20x slower; "
                            "use --precision fp32.")
        return name
    where = "CUDA GPUs and bf16 CPUs" if name == "bf16" else "CUDA GPUs"
    raise UserError(f"--precision {name} runs on {where}, not on {device.type}; "
                    "use --precision fp32.")


def recorded_precision(name: str, device: torch.device) -> "Precision":
    """The number format a run trained and validated in (config.json), for evaluating it
    the same way; float32 where this device cannot run that format (a bf16 run on a CPU
    without bf16, an fp16 run on a CPU)."""
    try:
        return Precision(resolve_precision(name, device), device.type)
    except UserError:
        LOGGER.warning("this run trained in %s, which this %s cannot run; it is evaluated in "
                       "fp32 instead, so the last digits of its figures may differ from "
                       "training's.", name, device.type.upper())
        return Precision("fp32", device.type)


def candidate_precisions(name: str, device: torch.device) -> list[str]:
    """The number formats the fast path may choose from by timing (fastpath.py): fp32 and bf16
    for 'auto' on a CPU that multiplies bf16 natively, where bf16 speeds up some models 2-3x
    and slows others; otherwise the one `resolve_precision` gives."""
    if name == "auto" and device.type == "cpu" and cpu_has_native_bf16():
        return ["fp32", "bf16"]
    return [resolve_precision(name, device)]


class Precision:
    """How the engine runs a step in one number format: the autocast region around the
    forward pass and the loss, and, for fp16, the loss scaling around backward and step."""

    def __init__(self, name: str = "fp32", device_type: str = "cpu"):
        self.name, self.device_type = name, device_type
        self.dtype = DTYPES.get(name)
        self.scaler = torch.amp.GradScaler(device_type) if name == "fp16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer) -> None:
        """Gradients back at their true size, before anything (clipping) reads them."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)  # skipped when a gradient overflowed
        self.scaler.update()

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, {self.device_type!r})"


FP32 = Precision()
