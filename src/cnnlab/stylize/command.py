"""`cnnlab stylize`: read the two pictures, optimise, write the run folder, report the numbers."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from ..accel.device import resolve_device
from ..errors import UserError
from . import DEFAULTS, outputs
from .extractors import Backbone, feature_taps
from .images import picture_label, read_picture, resized
from .optimise import OPTIMIZERS, History, Weights, stylize_pixels


def _check_numbers(steps, size, weights: Weights) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise UserError(f"--steps must be a positive whole number, not {steps!r}.")
    if not isinstance(size, int) or not 32 <= size <= 4096:
        raise UserError(f"--size must be a whole number of pixels from 32 to 4096, not {size!r}.")
    for name, value in (("--content-weight", weights.content), ("--style-weight", weights.style),
                        ("--tv-weight", weights.tv)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise UserError(f"{name} must be a finite number of at least 0, not {value!r}.")


def _progress(steps: int, quiet: bool):
    """A bar on stderr with the latest losses; off with quiet, or when stdout (a script
    reading --json) or stderr (where it would be drawn) is not a terminal. Returns
    (on_step, close)."""
    from tqdm.auto import tqdm
    bar = tqdm(total=steps, unit="step", file=sys.stderr, leave=False,
               disable=quiet or not (sys.stdout.isatty() and sys.stderr.isatty()))

    def on_step(_step: int, content: float, style: float) -> None:
        bar.set_postfix(content=f"{content:.3g}", style=f"{style:.3g}", refresh=False)
        bar.update(1)
    return on_step, bar.close


def stylize(content: str, style: str, out=None, steps: int = DEFAULTS["steps"],
            size: int = DEFAULTS["size"], style_weight: float = DEFAULTS["style_weight"],
            content_weight: float = DEFAULTS["content_weight"],
            tv_weight: float = DEFAULTS["tv_weight"], optimizer: str = DEFAULTS["optimizer"],
            backbone: str = DEFAULTS["backbone"], pooling: str = DEFAULTS["pooling"],
            weights: str | None = None, weights_file=None, device: str = "auto",
            run_root="runs", quiet: bool = False) -> dict:
    """CONTENT and STYLE are image files or sample:NAME; returns the numbers and the paths."""
    started, loss_weights = time.perf_counter(), Weights(content_weight, style_weight, tv_weight)
    _check_numbers(steps, size, loss_weights)
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{optimizer}'; choose one of: {', '.join(OPTIMIZERS)}.")
    out = outputs.check_out(out)
    device = resolve_device(device)
    pictures = [resized(read_picture(p), size).to(device) for p in (content, style)]
    spec, taps = feature_taps(backbone, weights, weights_file, pooling)
    on_step, close = _progress(steps, quiet)
    began = time.perf_counter()
    try:
        image, history = stylize_pixels(taps.to(device), spec, *pictures, steps, loss_weights,
                                        optimizer, on_step)
    finally:
        close()
    labels = [picture_label(p) for p in (content, style)]
    result = _numbers(spec, labels, history, steps, list(image.shape[-2:]), loss_weights,
                      optimizer, pooling)
    result["optimisation_seconds"] = round(time.perf_counter() - began, 2)
    _write(result, history, [*pictures, image], out, run_root)
    result["seconds"] = round(time.perf_counter() - started, 2)
    outputs.save_numbers(result, history, Path(result["run_dir"]) / outputs.NUMBERS)
    return result


def _numbers(spec: Backbone, labels, history: History, steps, shape, weights: Weights,
             optimizer: str, pooling: str) -> dict:
    first_last = lambda values: {"initial": values[0], "final": values[-1]}  # noqa: E731
    return {"content": labels[0], "style": labels[1], "backbone": spec.name,
            "content_layer": spec.content, "style_layers": list(spec.style),
            "pooling": pooling if spec.name == "vgg19" else None, "optimizer": optimizer,
            "steps": steps, "evaluations": len(history.content) - 1, "size": shape,
            "weights": {"content": weights.content, "style": weights.style, "tv": weights.tv},
            "initialised_from": "the content image",
            "content_loss": first_last(history.content), "style_loss": first_last(history.style),
            "tv_loss": first_last(history.tv),
            "style_loss_fall": history.style[0] / max(history.style[-1], 1e-30)}


def _write(result: dict, history: History, images, out: Path | None, run_root) -> None:
    """The run folder's files, and --out; their paths go into `result`."""
    run = outputs.new_run_folder(result["content"], result["style"], run_root)
    saved = outputs.save_picture(images[2], run / outputs.RESULT)
    result.update(run_dir=str(run), output=str(out if out is not None else saved))
    if out is not None:
        outputs.save_picture(images[2], out)
    how = (f"{result['backbone']}, {result['evaluations']} {result['optimizer']} steps, "
           f"style weight {result['weights']['style']:g}")
    outputs.save_sheet(images, [f"content: {result['content']}", f"style: {result['style']}",
                                f"result ({how})"], run / outputs.SHEET)
    outputs.save_curves(history, f"{result['content']} in the style of {result['style']}: {how}",
                        run / outputs.CURVES)
    result["files"] = [str(run / name) for name in (outputs.RESULT, outputs.SHEET,
                                                    outputs.CURVES, outputs.NUMBERS)]


def format_stylize(result: dict) -> str:
    c, s = result["content_loss"], result["style_loss"]
    return "\n".join([
        f"{result['content']} in the style of {result['style']} ({result['backbone']}, "
        f"{result['evaluations']} {result['optimizer']} steps, {result['seconds']:.1f} s)",
        f"style loss   {s['initial']:.4g} -> {s['final']:.4g} "
        f"({result['style_loss_fall']:.1f}x lower)",
        f"content loss {c['initial']:.4g} -> {c['final']:.4g} (relative squared error of "
        f"{result['content_layer']}; 0 at the start, the content image itself)",
        f"picture: {result['output']}", f"run folder: {result['run_dir']} (sheet.png, curves.png)"])
