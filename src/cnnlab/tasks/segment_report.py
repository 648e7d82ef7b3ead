"""What segmentation shows once a model is trained: `cnnlab evaluate`'s per-class IoU table,
confusion matrix and the worst test images with their predicted masks; `cnnlab report`'s
section; `cnnlab predict`'s mask and overlay per image file.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torchvision.utils import draw_segmentation_masks

from ..accel.precision import FP32, Precision
from ..engine.loop import evaluate
from ..figures import figure_bytes, save_figure
from ..webpage import data_url, figure, image_png, section, table
from .classify_figures import plot_confusion
from .diagnostics import denormalise
from .picture_files import output_folder, readable, write_png
from .segment import Segment, Tally, confusions, image_mious

CONFUSION, WORST = "confusion.png", "worst_masks.png"
WORST_COUNT = 8  # test images shown, lowest IoU first
BATCH = 16       # images per forward pass in predict
# One named colour per class, the background black; overlays blend them over the image.
PALETTE = [("black", (0, 0, 0)), ("red", (230, 25, 75)), ("green", (60, 180, 75)),
           ("blue", (0, 130, 200)), ("orange", (245, 130, 48)), ("purple", (145, 30, 180)),
           ("cyan", (70, 240, 240)), ("magenta", (240, 50, 230)), ("lime", (210, 245, 60)),
           ("pink", (250, 190, 212))]


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)][1]


def legend(classes: list[str]) -> str:
    return ", ".join(f"{name} {PALETTE[i % len(PALETTE)][0]}" for i, name in enumerate(classes))


def painted(mask: torch.Tensor) -> torch.Tensor:
    """uint8 3 x H x W: each pixel in its class's colour."""
    table = torch.tensor([colour(c) for c in range(int(mask.max()) + 1)], dtype=torch.uint8)
    return table[mask.long()].permute(2, 0, 1)


def overlay(image: torch.Tensor, mask: torch.Tensor, classes: int) -> torch.Tensor:
    """uint8 3 x H x W: `image` (grey made colour) with every non-background class of `mask`
    tinted in its colour."""
    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    layers = torch.stack([mask == c for c in range(1, classes)]) if classes > 1 else None
    if layers is None or not layers.any():
        return rgb.clone()
    return draw_segmentation_masks(rgb, layers, alpha=0.5,
                                   colors=[colour(c) for c in range(1, classes)])


class WithWorst(Tally):
    """The evaluation, also keeping the WORST_COUNT images of lowest IoU with their masks."""

    def __init__(self, preprocess):
        super().__init__()
        self.preprocess, self.worst, self.seen = preprocess, [], 0

    def add(self, inputs, logits, masks) -> None:
        super().add(inputs, logits, masks)
        predicted = logits.argmax(dim=1)
        mious = image_mious(confusions(predicted, masks, logits.shape[1])).tolist()  # one sync
        for i, miou in enumerate(mious):
            self.worst.append((miou, self.seen + i, inputs[i:i + 1], masks[i].cpu(),
                               predicted[i].cpu()))
        self.worst = sorted(self.worst, key=lambda w: (w[0], w[1]))[:WORST_COUNT]
        self.seen += len(masks)

    def pictures(self) -> list[dict]:
        return [{"index": index, "iou": iou,
                 "image": denormalise(image, self.preprocess)[0], "truth": truth,
                 "predicted": predicted} for iou, index, image, truth, predicted in self.worst]


def worst_figure(worst: list[dict], classes: list[str]) -> Figure:
    """Each of the worst images above its true mask and the predicted one."""
    fig = Figure(figsize=(1.9 * max(len(worst), 1), 6.2))
    axes = fig.subplots(3, max(len(worst), 1), squeeze=False)
    for column, item in enumerate(worst):
        image = item["image"].expand(3, -1, -1) if item["image"].shape[0] == 1 else item["image"]
        for row, (picture, label) in enumerate((
                (image, f"#{item['index']} IoU {item['iou']:.2f}"),
                (painted(item["truth"]), "true mask"), (painted(item["predicted"]), "predicted"))):
            axes[row][column].imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[row][column].set_title(label, fontsize=8)
    for ax in axes.flatten():
        ax.axis("off")
    fig.suptitle(f"Worst test images (lowest mean IoU); {legend(classes)}", fontsize=9)
    return fig


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, list[dict]]:
    gather = WithWorst(preprocess)
    result = evaluate(model, batches, Segment(), precision, accumulator=gather)
    worst = gather.pictures()
    plot_confusion(result.confusion, classes, run_dir / CONFUSION)
    save_figure(worst_figure(worst, classes), run_dir / WORST)
    matrix = result.confusion
    return {
        "images": gather.seen, "loss": result.loss, "miou": result.miou,
        "pixel_accuracy": result.pixel_accuracy,
        "per_class": [{"class": name, "iou": iou, "pixels": int(matrix[i].sum())}
                      for i, (name, iou) in enumerate(zip(classes, result.iou))],
        "confusion_matrix": matrix.tolist(),
        "worst": [{"index": w["index"], "iou": w["iou"]} for w in worst],
        "pictures": [str(run_dir / CONFUSION), str(run_dir / WORST)],
    }, worst


def format_report(report: dict) -> str:
    width = max(5, *(len(c["class"]) for c in report["per_class"]))
    lines = [f"{report['split']} mean IoU {report['miou']:.2%}, pixel accuracy "
             f"{report['pixel_accuracy']:.2%} (loss {report['loss']:.4f}) on {report['images']} "
             "images", "", f"{'class':>{width}}     IoU      pixels"]
    lines += [f"{c['class']:>{width}}  {'-' if c['iou'] is None else format(c['iou'], '6.2%'):>6}"
              f"  {c['pixels']:10,d}" for c in report["per_class"]]
    lines.append("\nworst images (lowest IoU): " + ", ".join(
        f"#{w['index']} {w['iou']:.2f}" for w in report["worst"][:5]))
    lines.append(f"pictures: {', '.join(report['pictures'])}")
    return "\n".join(lines)


def report_sections(report: dict, worst: list[dict], classes: list[str],
                    run_dir: Path) -> list[str]:
    rows = [(c["class"], "-" if c["iou"] is None else f"{c['iou']:.3f}", f"{c['pixels']:,}")
            for c in report["per_class"]]
    body = (f"<p>Test mean IoU <b>{report['miou']:.2%}</b>, pixel accuracy "
            f"{report['pixel_accuracy']:.2%} (loss {report['loss']:.4f}) on {report['images']} "
            "images.</p>" + '<div class="figures">'
            + figure((run_dir / CONFUSION).read_bytes(),
                     "confusion matrix of pixels (rows: true, columns: predicted)")
            + "</div>" + table(("class", "IoU", "true pixels"), rows))
    worst_body = (f"<p>The {len(worst)} test images with the lowest mean IoU: the true mask "
                  "over each image, and the predicted one under it.</p>"
                  + figure(figure_bytes(worst_figure(worst, classes)),
                           "worst test images: " + escape(", ".join(classes[1:]))))
    return [section("Test evaluation", body, "evaluation"),
            section("Worst images", worst_body, "worst-images")]


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, out_dir: str | None = None, **_) -> dict:
    """For each readable image file: its class-index mask as a PNG (at the image's own size),
    an overlay picture, and the fraction of pixels per class; in `out_dir` (default: a
    folder `masks` beside the first image)."""
    out = output_folder(files, out_dir, "masks")
    predictions, errors = [], []
    for file, image in readable(files, errors):
        with torch.inference_mode(), precision.autocast():
            logits = model(preprocess(image)[None].to(device)).float()
        mask = image_mask(logits[0], image)
        out.mkdir(parents=True, exist_ok=True)
        stem = Path(file).stem
        mask_path, overlay_path = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
        write_png(mask_path, mask.numpy())
        write_png(overlay_path, overlay(image, mask, len(classes)).permute(1, 2, 0).numpy())
        predictions.append({"file": str(file), "mask": str(mask_path),
                            "overlay": str(overlay_path),
                            "class_fractions": class_fractions(mask, classes)})
    return {"predictions": predictions, "errors": errors}


def image_mask(logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """K x h x w scores -> uint8 H x W class indices at the image's own size: the scores
    resized back first, then the best class per pixel."""
    logits = torch.nn.functional.interpolate(logits[None].float(), size=tuple(image.shape[-2:]),
                                             mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu()


def class_fractions(mask: torch.Tensor, classes: list[str]) -> dict[str, float]:
    counts = torch.bincount(mask.flatten().long(), minlength=len(classes)).double()
    return {name: float(f) for name, f in zip(classes, counts / counts.sum())}


def image_answer(image: torch.Tensor, logits: torch.Tensor, classes: list[str]) -> dict:
    """predict's answer for one decoded image and the model's K x h x w scores for it, the
    mask and the overlay inline as PNG data: URLs (what `cnnlab serve` sends back)."""
    mask = image_mask(logits, image)
    return {"mask": data_url(image_png(mask[None])),
            "overlay": data_url(image_png(overlay(image, mask, len(classes)))),
            "class_fractions": class_fractions(mask, classes)}


def format_predictions(result: dict) -> str:
    lines = []
    for item in result["predictions"]:
        shares = ", ".join(f"{name} {share:.1%}" for name, share in
                           item["class_fractions"].items() if share > 0)
        lines.append(f"{item['file']}: {shares}; mask {item['mask']}, overlay {item['overlay']}")
    return "\n".join(lines)

