"""What `cnnlab evaluate`, `report` and `predict` show for a detector: COCO's table (mAP over
IoU .50:.95, at .50 and .75, recall, AP per class), and for new images the boxes, classes,
scores (and masks) drawn on each picture and listed in JSON, in the image's own pixels."""
from __future__ import annotations

from html import escape
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torchvision.ops import box_iou
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..accel.precision import FP32, Precision
from ..engine.loop import evaluate
from ..figures import save_figure
from ..webpage import data_url, figure, image_png, section, table
from .detect import MASK_THRESHOLD, Detect, DetectionTally, Instance
from .coco_results import coco_results
from .picture_files import output_folder, readable, write_png
from .segment_report import colour

SCORE_THRESHOLD = 0.5  # predict's default: detections below it are left out
CURVES = "precision_recall.png"
WORST = "worst_detections.png"
WORST_COUNT = 6
MATCH_IOU = 0.5  # a detection finds an object when their boxes overlap this much


def errors_in(found: dict, truth: dict) -> int:
    """Objects missed plus detections of nothing, for one image: detections scored at least
    SCORE_THRESHOLD, matched greedily by score to an unmatched object of the same class with
    IoU >= MATCH_IOU (COCO's rule at IoU .5)."""
    keep = found["scores"] >= SCORE_THRESHOLD
    boxes, labels = found["boxes"][keep], found["labels"][keep]
    order = found["scores"][keep].argsort(descending=True)
    overlaps = box_iou(boxes, truth["boxes"]) if len(boxes) and len(truth["boxes"]) else None
    matched, false = set(), 0
    for d in order.tolist():
        best, best_iou = None, MATCH_IOU
        for t in range(len(truth["boxes"])):
            if t in matched or int(truth["labels"][t]) != int(labels[d]):
                continue
            if overlaps is not None and float(overlaps[d, t]) >= best_iou:
                best, best_iou = t, float(overlaps[d, t])
        if best is None:
            false += 1
        else:
            matched.add(best)
    return false + len(truth["boxes"]) - len(matched)


class WithWorst(DetectionTally):
    """COCO's evaluation, also keeping the WORST_COUNT images with the most errors (missed
    objects plus detections of nothing) with their objects and detections."""

    def __init__(self, instance: bool):
        super().__init__(instance, curves=True)
        self.worst, self.seen = [], 0

    def add(self, inputs, outputs: list[dict], targets: list[dict]) -> None:
        super().add(inputs, outputs, targets)
        for i, (found, truth) in enumerate(zip(outputs, targets)):
            found = {k: v.detach().cpu() for k, v in found.items() if k != "masks"}
            truth = {k: v.cpu() for k, v in truth.items() if k != "masks"}
            # the detectors see [0, 1] pixels: back to uint8 for drawing
            image = (inputs[i].float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
            self.worst.append((-errors_in(found, truth), self.seen + i, image, truth, found))
        self.worst = sorted(self.worst, key=lambda w: (w[0], w[1]))[:WORST_COUNT]
        self.seen += len(targets)


def worst_figure(worst: list, classes: list[str]) -> Figure:
    """Each of the worst images: its objects (left), the detections above the threshold
    (right)."""
    fig = Figure(figsize=(6, 2.6 * max(1, len(worst))))
    axes = fig.subplots(max(1, len(worst)), 2, squeeze=False)
    for row, (errors, index, image, truth, found) in zip(axes, worst):
        shown = {k: v[found["scores"] >= SCORE_THRESHOLD] for k, v in found.items()}
        sides = (drawn(image, {**truth, "scores": torch.ones(len(truth["labels"]))}, classes),
                 drawn(image, shown, classes))
        for ax, picture, title in zip(row, sides, (f"#{index}: the objects",
                                                   f"detected ({-errors} errors)")):
            ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    return fig


def _task(instance: bool) -> Detect:
    return Instance() if instance else Detect()


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, list]:
    heads = getattr(model, "roi_heads", None)
    instance = heads is not None and heads.has_mask()  # Mask R-CNN
    gather = WithWorst(instance)
    result = evaluate(model, batches, _task(instance), precision, accumulator=gather)
    name = lambda index: classes[index] if 0 <= index < len(classes) else str(index)  # noqa
    per_class = [{"class": name(index), "ap": None if found["ap"] < 0 else found["ap"]}
                 for index, found in sorted(result.per_class.items())]
    save_figure(curves_figure({name(k): v for k, v in sorted(result.curves.items())}),
                run_dir / CURVES)
    save_figure(worst_figure(gather.worst, classes), run_dir / WORST)
    return {"images": result.images, **result.metrics(), "per_class": per_class,
            "worst": [{"index": w[1], "errors": -w[0]} for w in gather.worst],
            "pictures": [str(run_dir / CURVES), str(run_dir / WORST)]}, gather.worst


def curves_figure(curves: dict[str, list[float]]) -> Figure:
    """Precision against recall per class at IoU .5: the curve whose area is AP@.5."""
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    recall = [r / 100 for r in range(101)]
    for name, precision in curves.items():
        ax.plot(recall, precision, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall at IoU 0.5, per class", fontsize=10)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    return fig


def format_report(report: dict) -> str:
    lines = [f"{report['split']} box mAP {report['map']:.2%} (IoU .50:.95), mAP@.5 "
             f"{report['map50']:.2%}, mAP@.75 {report['map75']:.2%}, recall@100 "
             f"{report['mar100']:.2%} on {report['images']} images"]
    if "mask_map" in report:
        lines.append(f"mask mAP {report['mask_map']:.2%}, mask mAP@.5 {report['mask_map50']:.2%}")
    width = max(5, *(len(c["class"]) for c in report["per_class"])) if report["per_class"] else 5
    lines += ["", f"{'class':>{width}}   box AP"]
    lines += [f"{c['class']:>{width}}  {'-' if c['ap'] is None else format(c['ap'], '7.2%')}"
              for c in report["per_class"]]
    lines.append("\nworst images (most errors): " + ", ".join(
        f"#{w['index']} {w['errors']}" for w in report["worst"][:5]))
    lines.append(f"pictures: {', '.join(report['pictures'])}")
    return "\n".join(lines)


def report_sections(report: dict, details, classes: list[str], run_dir: Path) -> list[str]:
    rows = [(c["class"], "-" if c["ap"] is None else f"{c['ap']:.3f}")
            for c in report["per_class"]]
    masks = (f", mask mAP@.5 {report['mask_map50']:.2%}" if "mask_map50" in report else "")
    body = (f"<p>Test box mAP <b>{report['map']:.2%}</b> (IoU .50:.95), mAP@.5 "
            f"{report['map50']:.2%}{escape(masks)} on {report['images']} images.</p>"
            + '<div class="figures">' + figure((run_dir / CURVES).read_bytes(),
                                               "precision-recall at IoU 0.5, per class")
            + "</div>" + table(("class", "box AP"), rows))
    worst_body = (f"<p>The {len(details)} test images with the most errors (objects missed "
                  f"plus detections of nothing, scores from {SCORE_THRESHOLD}, IoU "
                  f"{MATCH_IOU}): the objects on the left, the detections on the right.</p>"
                  + figure((run_dir / WORST).read_bytes(), "worst test images"))
    return [section("Test evaluation", body, "evaluation"),
            section("Worst images", worst_body, "worst-images")]


def detections(model, image: torch.Tensor, preprocess, device, precision: Precision) -> dict:
    """The model's detections for one uint8 image, boxes (and masks) in its own pixels."""
    inputs = preprocess(image)[None].to(device)
    with torch.inference_mode(), precision.autocast():
        found = model(inputs)[0]
    return in_image_pixels(found, image, tuple(inputs.shape[-2:]))


def in_image_pixels(found: dict, image: torch.Tensor, input_size: tuple[int, int]) -> dict:
    """One image's detections as the model gave them at `input_size` (H, W) -> on the CPU,
    boxes (and masks) in the image's own pixels."""
    height, width = image.shape[-2:]
    scale = torch.tensor([width / input_size[1], height / input_size[0]] * 2)
    out = {"boxes": found["boxes"].float().cpu() * scale, "labels": found["labels"].cpu(),
           "scores": found["scores"].float().cpu()}
    if "masks" in found:
        masks = torch.nn.functional.interpolate(found["masks"].float().cpu(),
                                                size=(height, width), mode="bilinear")
        out["masks"] = masks[:, 0] > MASK_THRESHOLD
    return out


def drawn(image: torch.Tensor, found: dict, classes: list[str]) -> torch.Tensor:
    """The image with each detection's mask, box, class and score drawn."""
    picture = image if image.shape[0] == 3 else image[:1].expand(3, -1, -1)
    colours = [colour(int(label)) for label in found["labels"]]
    if "masks" in found and len(found["masks"]):
        picture = draw_segmentation_masks(picture, found["masks"], alpha=0.45, colors=colours)
    if not len(found["boxes"]):
        return picture
    labels = [f"{classes[int(k)] if int(k) < len(classes) else int(k)} {s:.2f}"
              for k, s in zip(found["labels"], found["scores"])]
    return draw_bounding_boxes(picture, found["boxes"], labels, colors=colours, width=2)


# what predict --format can write besides the pictures and the JSON on stdout
FORMATS = ("cnnlab", "coco")


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, out_dir: str | None = None,
            score_threshold: float = SCORE_THRESHOLD, output_format: str = "cnnlab",
            dataset: str = "", **_) -> dict:
    """For each readable image: its detections above `score_threshold` as JSON (class, score,
    box [x1, y1, x2, y2] in the image's pixels, and a mask PNG per object for instance
    models) and a picture with them drawn, in `out_dir` (default: `detections` beside the
    first image); `output_format` "coco" adds them all as one COCO results file
    (coco_results.py; `dataset`, the run's, supplies the annotations' ids)."""
    out = output_folder(files, out_dir, "detections")
    predictions, errors, kept = [], [], []
    for file, image in readable(files, errors):
        found = detections(model, image, preprocess, device, precision)
        keep = found["scores"] >= score_threshold
        found = {k: v[keep] for k, v in found.items()}
        kept.append((str(file), found))
        out.mkdir(parents=True, exist_ok=True)
        stem = Path(file).stem
        picture = out / f"{stem}_detections.png"
        write_png(picture, drawn(image, found, classes).permute(1, 2, 0).numpy())
        items = listed(found, classes)
        for i, item in enumerate(items if "masks" in found else []):
            item["mask"] = str(out / f"{stem}_object{i}_mask.png")
            write_png(Path(item["mask"]), found["masks"][i].numpy().astype("uint8") * 255)
        predictions.append({"file": str(file), "picture": str(picture), "detections": items})
    result = {"predictions": predictions, "errors": errors}
    if output_format == "coco" and kept:
        result["coco_results"] = coco_results(kept, dataset, out)
    return result


def listed(found: dict, classes: list[str]) -> list[dict]:
    """Each detection's class, score and box [x1, y1, x2, y2], as predict --json lists them."""
    return [{"class": classes[int(label)] if int(label) < len(classes) else str(int(label)),
             "score": float(score), "box": [round(float(v), 2) for v in box]}
            for box, label, score in zip(found["boxes"], found["labels"], found["scores"])]


def image_answer(image: torch.Tensor, found: dict, input_size: tuple[int, int],
                 classes: list[str], score_threshold: float = SCORE_THRESHOLD) -> dict:
    """predict's answer for one decoded image and the model's detections for it at
    `input_size`: the picture and each object's mask inline as PNG data: URLs (what
    `cnnlab serve` sends back)."""
    found = in_image_pixels(found, image, input_size)
    keep = found["scores"] >= score_threshold
    found = {k: v[keep] for k, v in found.items()}
    items = listed(found, classes)
    for item, mask in zip(items if "masks" in found else [], found.get("masks", [])):
        item["mask"] = data_url(image_png(mask[None].to(torch.uint8) * 255))
    return {"picture": data_url(image_png(drawn(image, found, classes))), "detections": items}


def format_predictions(result: dict) -> str:
    lines = []
    for item in result["predictions"]:
        found = ", ".join(f"{d['class']} {d['score']:.2f} at "
                          f"[{', '.join(f'{v:.0f}' for v in d['box'])}]" for d in item["detections"])
        lines.append(f"{item['file']}: {found or 'nothing above the score threshold'}; "
                     f"picture {item['picture']}")
    if "coco_results" in result:
        written = result["coco_results"]
        lines.append(f"COCO results: {written['file']} ({written['ids']})")
    return "\n".join(lines)
