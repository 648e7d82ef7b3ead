"""`cnnlab report RUN`: everything about a run in one HTML file that opens anywhere.

The lectures measure a network (training and validation accuracy per epoch, 002) and look
inside it (conv1's feature maps, 001; learned kernels, 003). The report puts both on one page:
the config, the learning curves, the test evaluation (confusion matrix, per-class scores,
calibration, the top losses), the first layer's kernels and the feature maps of a test image.

Every picture is embedded as a base64 data: URL and the page has no script and no link to
anything outside itself, so it can be mailed, archived or opened offline and shows the same.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import torch
from PIL import Image

from ..runs import folder as runs
from ..atomic import atomic_write_text
from ..tasks.diagnostics import Mistake
from ..errors import UserError
from ..infer.evaluate import evaluate_with_mistakes
from ..figures import figure_bytes
from .report_html import page, section, settings, table


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(image: torch.Tensor) -> bytes:
    """uint8 C x H x W -> PNG bytes at its own size (the page scales it up, pixelated)."""
    array = image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, "PNG")
    return buffer.getvalue()


def figure(png: bytes, caption: str) -> str:
    from html import escape
    return (f'<figure><img src="{data_url(png)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def first_test_image(config) -> tuple[torch.Tensor, int]:
    """The test split's first image (uint8 C x H x W, as stored) and its label."""
    from ..data import load_dataset
    from ..data.images import decode_image
    test = load_dataset(config.dataset, config.data_dir).test
    image = test.images[0] if hasattr(test, "images") else decode_image(test.files[0])
    return image, int(test.labels[0])


def losses_section(mistakes: list[Mistake], classes: list[str]) -> str:
    """One card per mistake, highest loss first, with the numbers also as data attributes."""
    from html import escape
    cards = []
    for rank, m in enumerate(mistakes, start=1):
        text = (f"true <b>{escape(classes[m.true])}</b>, predicted "
                f"<b>{escape(classes[m.predicted])}</b><br>"
                f"loss {m.loss:.3f}, p={m.confidence:.2f}")
        cards.append(f'<li data-rank="{rank}" data-index="{m.index}" data-loss="{m.loss:.6f}" '
                     f'data-true="{escape(classes[m.true])}" '
                     f'data-predicted="{escape(classes[m.predicted])}">'
                     f'<img src="{data_url(image_png(m.image))}" alt="test image {m.index}">'
                     f"<p>#{m.index}: {text}</p></li>")
    if not cards:
        return "<p>No test image was misclassified.</p>"
    return ("<p>The misclassified test images with the highest loss, the worst first: where the "
            "model was most confidently wrong.</p>"
            f'<ol class="losses">{"".join(cards)}</ol>')


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


def curves_section(run_dir: Path) -> str:
    history = runs.read_metrics(run_dir)
    curves = run_dir / runs.CURVES
    body = figure(curves.read_bytes(), "loss and accuracy per epoch, training and validation") \
        if curves.is_file() else "<p>This run has no curves.png.</p>"
    if history:
        last = history[-1]
        body += (f"<p>After epoch {last['epoch']}: training accuracy "
                 f"{last['train_accuracy']:.2%}, validation accuracy {last['val_accuracy']:.2%}."
                 "</p>")
    return section("Learning curves", body, "curves")


def evaluation_section(report: dict, run_dir: Path) -> str:
    rows = [(c["class"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
             str(c["support"])) for c in report["per_class"]]
    pictures = [(runs.CONFUSION, "confusion matrix (rows: true, columns: predicted)"),
                (runs.PER_CLASS, "precision, recall and F1 per class"),
                (runs.RELIABILITY, f"reliability diagram, ECE {report['calibration']['ece']:.3f}")]
    body = (f"<p>Test accuracy <b>{report['accuracy']:.2%}</b> (loss {report['loss']:.4f}) on "
            f"{report['images']} images.</p>"
            + '<div class="figures">'
            + "".join(figure((run_dir / name).read_bytes(), caption) for name, caption in pictures)
            + "</div>" + table(("class", "precision", "recall", "F1", "support"), rows))
    return section("Test evaluation", body, "evaluation")


def inside_sections(run_dir: Path, spec: runs.RunSpec, device: str) -> list[str]:
    """The first layer's kernels and every convolution stage's maps of one test image."""
    from .featuremaps import draw as draw_maps, layer_grids
    from .filters import draw as draw_kernels, kernel_grid
    from .inspection import load_subject
    subject = load_subject(run=str(run_dir), device=device)
    kernels = kernel_grid(subject.model, model_name=subject.name)
    image, label = first_test_image(spec.config)
    picture, grids = layer_grids(subject, image)
    caption = f"the first test image (class {spec.classes[label]}) through every convolution stage"
    return [section("Filters", figure(figure_bytes(draw_kernels(kernels)),
                                      f"kernels of {kernels.layer}"), "filters"),
            section("Feature maps", figure(figure_bytes(draw_maps(picture, grids, subject.name)),
                                           caption), "featuremaps")]


def build_report(run_dir: str | Path, out: str | None = None, device: str = "auto") -> dict:
    """`cnnlab report RUN [--out FILE.html]`: writes the page (default RUN/report.html)."""
    run_dir = Path(run_dir)
    target = Path(out) if out else run_dir / runs.REPORT
    if target.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"the report is an HTML file; give --out a name ending in .html, "
                        f"not {target}.")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: the folder {target.parent} does not exist.")
    report, mistakes = evaluate_with_mistakes(run_dir, "test", device)
    spec = runs.read_spec(run_dir)
    summary = (f"<p>{spec.config.model} trained on {spec.config.dataset} for "
               f"{spec.config.epochs} epochs: test accuracy <b>{report['accuracy']:.2%}</b>.</p>")
    sections = [summary, config_section(spec), curves_section(run_dir),
                evaluation_section(report, run_dir),
                section("Top losses", losses_section(mistakes, spec.classes), "top-losses"),
                *inside_sections(run_dir, spec, device)]
    atomic_write_text(target, page(f"cnnlab report: {run_dir.name}", sections))
    return {"out": str(target), "run_dir": str(run_dir), "accuracy": report["accuracy"],
            "top_losses": report["top_losses"]}


def format_report_result(result: dict) -> str:
    return (f"report of {result['run_dir']} (test accuracy {result['accuracy']:.2%}, "
            f"{len(result['top_losses'])} top losses): {result['out']}")
