"""Does the exported file answer as cnnlab does? Both run on the same real images.

Two numbers: the largest absolute difference between any output value of the two (float
arithmetic reordered by another runtime moves the last digits, 1e-7 to 1e-5 on the
models measured; a wrong export moves whole units), and how often they pick the same class: per
image for classification and video, per pixel for segmentation (an embedding has no class,
so there only the difference counts). The check passes when the difference is within the
tolerance (1e-4 by default, times the largest output where that exceeds 1) and every answer
is the same.
"""
from __future__ import annotations

import torch

TOLERANCE = 1e-4
# What one top-1 answer is about, per task; the others' outputs hold no class.
AGREEMENT_OF = {"classify": "images", "video": "clips", "segment": "pixels"}


def compare(original, exported, inputs: torch.Tensor, batch: int | None, task: str,
            tolerance: float = TOLERANCE) -> dict:
    """`original` and `exported` (batch -> output) on `inputs`, `batch` at a time (None: all
    at once, which proves that a dynamic batch works)."""
    step = batch or len(inputs)
    with torch.inference_mode():
        ours = torch.cat([original(inputs[i:i + step]) for i in range(0, len(inputs), step)])
        theirs = torch.cat([exported(inputs[i:i + step].contiguous())
                            for i in range(0, len(inputs), step)])
    theirs = torch.as_tensor(theirs).to(ours.dtype)
    if theirs.shape != ours.shape:
        return {"max_abs_diff": None, "top1_agreement": None, "agreement_of": None,
                "parity_ok": False, "tolerance": tolerance,
                "problem": f"the exported output has shape "
                f"{list(theirs.shape)}, cnnlab's {list(ours.shape)}"}
    diff, scale = float((theirs - ours).abs().max()), float(ours.abs().max())
    of = AGREEMENT_OF.get(task)
    agreement = None if of is None else _agreement(ours, theirs)
    # float32 keeps about 7 digits: outputs in the thousands (a barely trained network's
    # logits) differ by 1e-3 from rounding alone, so above 1 the tolerance scales with them.
    ok = diff <= tolerance * max(1.0, scale) and (agreement is None or agreement == 1.0)
    return {"max_abs_diff": diff, "max_abs_output": scale, "top1_agreement": agreement,
            "agreement_of": of, "parity_ok": ok, "tolerance": tolerance}


def _agreement(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Share of images or clips (N x K logits) or pixels (N x K x H x W) given the same
    class by both."""
    return float((ours.argmax(dim=1) == theirs.argmax(dim=1)).double().mean())
