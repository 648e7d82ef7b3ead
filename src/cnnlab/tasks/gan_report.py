"""What a GAN shows once trained: `cnnlab evaluate`'s Fréchet distance and recognised share on
a split (with which classes the judge sees in the samples), `cnnlab report`'s sample grids
over the epochs and the distance per epoch, `cnnlab predict`'s new images (or, for image
files, the discriminator's opinion of them).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from ..accel.precision import FP32, Precision
from ..atomic import atomic_write_bytes
from ..engine.loop import evaluate
from ..figures import figure_bytes, save_figure
from ..webpage import data_url, figure, image_png, section, table
from .frechet import CONFIDENT
from .gan import Gan, GanTally
from .gan_judge import JUDGE, load_judge
from .gan_samples import png_bytes, sample_files, sample_tiles
from .picture_files import readable, write_png

GENERATED, CLASSES = "generated.png", "generated_classes.png"
GENERATES = True   # `cnnlab predict RUN` with no image files draws new ones (predict)
COUNT = 64         # images it draws when not told
SHOWN_EPOCHS = 6   # sample grids the report shows, first to last


def class_figure(report: dict) -> Figure:
    """The share of generated images the judge puts in each class: a GAN that makes only
    some of the classes ('mode collapse') shows it here."""
    names = [c["class"] for c in report["generated_classes"]]
    fig = Figure(figsize=(max(4, 0.5 * len(names) + 2), 3))
    ax = fig.subplots()
    ax.bar(names, [c["share"] for c in report["generated_classes"]], color="tab:blue")
    ax.axhline(1 / max(len(names), 1), color="grey", linestyle="--", label="every class alike")
    ax.set_ylabel("share of generated images")
    ax.set_title("What the judge sees in the generated images", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, dict]:
    run_dir = Path(run_dir)
    judge = load_judge(run_dir, next(model.parameters()).device)
    gather = GanTally(judge, len(classes))
    result = evaluate(model, batches, Gan(judge, len(classes)), precision, accumulator=gather)
    scores = result.scores
    write_png(run_dir / GENERATED, sample_tiles(model).permute(1, 2, 0).numpy())
    record = json.loads((run_dir / JUDGE / "judge.json").read_text())
    report = {"images": gather.count, **result.metrics(),
              "confident": CONFIDENT,
              "generated_classes": [{"class": name, "share": share} for name, share in
                                    zip(classes, scores["predicted_classes"])],
              "judge": {"model": record["model"], "val_accuracy": record["val_accuracy"]},
              "pictures": [str(run_dir / GENERATED), str(run_dir / CLASSES)]}
    save_figure(class_figure(report), run_dir / CLASSES)
    return report, {}


def format_report(report: dict) -> str:
    shares = ", ".join(f"{c['class']} {c['share']:.0%}" for c in report["generated_classes"])
    return "\n".join([
        f"{report['split']} Fréchet distance {report['frechet_distance']:.2f} (judge's features; "
        f"not comparable with published FID) over {report['images']} real and as many "
        "generated images",
        f"recognised: {report['recognised']:.1%} of generated images (real images: "
        f"{report['real_recognised']:.1%}) at judge confidence >= {report['confident']:.0%}",
        f"discriminator: D(real) {report['d_real']:.3f}, D(generated) {report['d_fake']:.3f}; "
        f"losses D {report['d_loss']:.4f}, G {report['g_loss']:.4f}",
        f"the judge ({report['judge']['model']}) calls the generated images: {shares}",
        f"pictures: {', '.join(report['pictures'])}"])


def distance_figure(history: list[dict]) -> Figure:
    epochs = [m["epoch"] for m in history]
    fig = Figure(figsize=(10, 3.5))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [m["val_frechet_distance"] for m in history], marker=".")
    left.set_yscale("log")  # it falls by orders of magnitude in the first epochs
    left.set_title("Fréchet distance to the validation images (lower: closer)")
    right.plot(epochs, [m["val_recognised"] for m in history], marker=".", label="generated")
    right.plot(epochs, [m["val_real_recognised"] for m in history], linestyle="--",
               label="real (the judge's own ceiling)")
    right.set_title(f"Share recognised with confidence >= {CONFIDENT:.0%}")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return fig


def report_sections(report: dict, details, classes: list[str], run_dir: Path) -> list[str]:
    run_dir = Path(run_dir)
    rows = [(c["class"], f"{c['share']:.1%}") for c in report["generated_classes"]]
    body = (f"<p>Test Fréchet distance <b>{report['frechet_distance']:.2f}</b> in the features "
            f"of the run's judge ({report['judge']['model']}, validation accuracy "
            f"{report['judge']['val_accuracy']:.1%}): it compares epochs and runs on this data "
            "set, not published FID values. The judge recognises "
            f"<b>{report['recognised']:.1%}</b> of generated images with confidence "
            f"&ge; {report['confident']:.0%} (real test images: "
            f"{report['real_recognised']:.1%}).</p><div class=\"figures\">"
            + figure((run_dir / GENERATED).read_bytes(), "the final generator's images for the "
                     "fixed noise") + figure((run_dir / CLASSES).read_bytes(),
                                             "classes the judge gives the generated images")
            + "</div>" + table(("class", "share of generated images"), rows))
    sections = [section("Test evaluation", body, "evaluation")]
    metrics = run_dir / "metrics.jsonl"
    history = [json.loads(line) for line in metrics.read_text().splitlines()
               if line.strip()] if metrics.is_file() else []
    if history and "val_frechet_distance" in history[0]:
        sections.append(section("Fréchet distance per epoch", figure(figure_bytes(
            distance_figure(history)), "distance and recognised share per epoch, validation "
            "split"), "frechet"))
    files = sample_files(run_dir)
    if files:
        picked = sorted({files[round(i * (len(files) - 1) / max(SHOWN_EPOCHS - 1, 1))]
                         for i in range(min(SHOWN_EPOCHS, len(files)))})
        grids = "".join(figure(f.read_bytes(), f"after {f.stem.replace('_', ' ')}")
                        for f in picked)
        sections.append(section("Samples over the epochs", "<p>The same fixed noise drawn after "
                                "each epoch (all of them in RUN/samples/, and as "
                                "samples.gif).</p><div class=\"figures\">" + grids + "</div>",
                                "samples"))
    return sections


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, out_dir: str | None = None, count: int | None = None,
            **_) -> dict:
    """No files: `count` new images (default COUNT) as PNGs and one grid, in `out_dir`
    (default: ./generated). Files: the discriminator's probability that each is a real
    image of the training set's kind."""
    errors: list[dict] = []
    if files:
        predictions = []
        for file, image in readable(files, errors):
            with torch.inference_mode(), precision.autocast():
                logit = model.discriminator(preprocess(image)[None].to(device)).float()
            predictions.append({"file": str(file), "real": float(torch.sigmoid(logit)[0])})
        return {"predictions": predictions, "errors": errors}
    out = Path(out_dir or "generated")
    out.mkdir(parents=True, exist_ok=True)
    pixels, grid_pixels = generated(model, COUNT if count is None else count, precision)
    written = []
    for i, image in enumerate(pixels):
        path = out / f"generated_{i:04d}.png"
        write_png(path, image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy())
        written.append(str(path))
    grid = out / "grid.png"
    atomic_write_bytes(grid, png_bytes(grid_pixels))
    return {"predictions": [{"file": f} for f in written], "grid": str(grid), "errors": errors}


def generated(model, count: int, precision: Precision = FP32,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` new images from the noise of `seed` (the same every time), uint8 N x C x H x W
    on the CPU, and the grid of them, 8 to a row."""
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode(), precision.autocast():
        images = model.generator(model.noise(count, generator)).float().cpu()
    tiles = make_grid(images.add(1).div(2).clamp(0, 1), nrow=8, padding=2, pad_value=1.0)
    return (((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8),
            (tiles * 255).round().to(torch.uint8))


def generated_answer(model, count: int, precision: Precision = FP32, seed: int = 0) -> dict:
    """predict's answer with no image files, the images and their grid inline as PNG data:
    URLs (what `cnnlab serve` sends back)."""
    pixels, grid = generated(model, count, precision, seed)
    return {"predictions": [{"file": f"generated_{i:04d}.png", "image": data_url(image_png(p))}
                            for i, p in enumerate(pixels)],
            "grid": data_url(png_bytes(grid)), "errors": []}


def format_predictions(result: dict) -> str:
    if "grid" in result:
        return (f"{len(result['predictions'])} generated images in "
                f"{Path(result['grid']).parent} (grid: {result['grid']})")
    return "\n".join(f"{item['file']}: real {item['real']:.1%} (the discriminator's view)"
                     for item in result["predictions"])
