"""`cnnlab report RUN`: everything about a run in one HTML file that opens anywhere.

The lectures measure a network (training and validation accuracy per epoch, 002) and look
inside it (conv1's feature maps, 001; learned kernels, 003). The report puts both on one page:
the config, the learning curves, the test evaluation as the run's task shows it (for
classification: confusion matrix, per-class scores, calibration, the top losses), the first
layer's kernels and the feature maps of a test image.

Every picture is embedded as a base64 data: URL and the page has no script and no link to
anything outside itself, so it can be mailed, archived or opened offline and shows the same.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..errors import UserError
from ..figures import figure_bytes
from ..infer.evaluate import evaluate_with_details
from ..runs import folder as runs
from ..tasks import make_task, task_views
from ..webpage import figure, page, section, settings


def first_test_image(config) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split's first image (uint8 C x H x W, as stored) and its target as the run's
    task sees it (a class index, or a mask)."""
    from ..data import load_dataset
    from ..data.images import decode_image
    test = make_task(config.task, config).targets(load_dataset(config.dataset, config.data_dir)).test
    image = test.images[0] if hasattr(test, "images") else decode_image(test.files[0])
    return image, test.labels[0]


def config_section(spec: runs.RunSpec) -> str:
    """Every training setting (what config.json records), then the input the model expects."""
    pre = spec.preprocess
    numbers = lambda values: ", ".join(f"{v:.4f}" for v in values)  # noqa: E731
    rows = [(key, "-" if value is None else str(value))
            for key, value in spec.config.to_dict().items()]
    rows += [("classes", ", ".join(spec.classes)),
             ("input", f"{pre.channels}x{pre.size[0]}x{pre.size[1]}"),
             ("mean / std", f"{numbers(pre.mean)} / {numbers(pre.std)}")]
    return section("Configuration", settings(rows), "config")


def curves_section(run_dir: Path, headline) -> str:
    history = runs.read_metrics(run_dir)
    curves = run_dir / runs.CURVES
    body = figure(curves.read_bytes(), f"loss and {headline.key} per epoch, training and "
                  "validation") if curves.is_file() else "<p>This run has no curves.png.</p>"
    if history:
        last = history[-1]
        shown = [f"{split} {headline.key} {headline.show(last[f'{key}_{headline.key}'])}"
                 for key, split in (("train", "training"), ("val", "validation"))
                 if f"{key}_{headline.key}" in last]  # a detector has no training mAP
        body += f"<p>After epoch {last['epoch']}: {', '.join(shown)}.</p>"
    return section("Learning curves", body, "curves")


def inside_sections(run_dir: Path, spec: runs.RunSpec, device: str) -> list[str]:
    """The first layer's kernels and every convolution stage's maps of one test image."""
    from .featuremaps import draw as draw_maps, layer_grids
    from .filters import draw as draw_kernels, kernel_grid
    from .inspection import load_subject
    subject = load_subject(run=str(run_dir), device=device)
    own = getattr(task_views(spec.config.task), "inside_sections", None)
    if own is not None:  # a task that looks inside its own way (video: kernels over time)
        clip, target = first_test_image(spec.config)
        return own(subject.model, clip, spec.preprocess, target, spec.classes)
    kernels = kernel_grid(subject.model, model_name=subject.name)
    image, target = first_test_image(spec.config)
    picture, grids = layer_grids(subject, image)
    one_class = isinstance(target, torch.Tensor) and target.dim() == 0  # not a mask or boxes
    named = f" (class {spec.classes[int(target)]})" if one_class else ""
    caption = f"the first test image{named} through every convolution stage"
    return [section("Filters", figure(figure_bytes(draw_kernels(kernels)),
                                      f"kernels of {kernels.layer}"), "filters"),
            section("Feature maps", figure(figure_bytes(draw_maps(picture, grids, subject.name)),
                                           caption), "featuremaps")]


def build_report(run_dir: str | Path, out: str | None = None, device: str = "auto") -> dict:
    """`cnnlab report RUN [--out FILE.html]`: writes the page (default RUN/report.html)."""
    run_dir = Path(run_dir)
    spec = runs.read_spec(run_dir)  # a wrong RUN is said first
    target = Path(out) if out else run_dir / runs.REPORT
    if target.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"the report is an HTML file; give --out a name ending in .html, "
                        f"not {target}.")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: the folder {target.parent} does not exist.")
    report, details = evaluate_with_details(run_dir, "test", device)
    task = make_task(spec.config.task, spec.config)
    key = task.headline.key
    summary = (f"<p>{spec.config.model} trained on {spec.config.dataset} for "
               f"{spec.config.epochs} epochs: test {key} "
               f"<b>{task.headline.show(report[key])}</b>.</p>")
    sections = [summary, config_section(spec), curves_section(run_dir, task.headline),
                *task_views(task.name).report_sections(report, details, spec.classes, run_dir),
                *inside_sections(run_dir, spec, device)]
    atomic_write_text(target, page(f"cnnlab report: {run_dir.name}", sections))
    return {"out": str(target), **report}


def format_report_result(result: dict) -> str:
    headline = make_task(result["task"]).headline
    return (f"report of {result['run_dir']} (test {headline.key} "
            f"{headline.show(result[headline.key])}): {result['out']}")
