"""Object detection and instance segmentation: a box, a class and a score for every object
(and, for `instance`, its mask).

torchvision's detectors compute their own losses, since what a loss compares depends on which
anchors or proposals each object is matched to inside the forward pass: in training mode the
model takes the images *and* the targets and returns a dict of losses (RPN objectness, box
regression, classification, mask ...), whose sum is the objective. In evaluation mode it
returns, per image, {"boxes", "labels", "scores"(, "masks")}, and the evaluation is COCO's:
mean average precision over IoU thresholds .50:.05:.95 (`map`), at .50 (`map50`) and .75,
mean average recall over 100 detections, and AP per class, computed by torchmetrics'
MeanAveragePrecision on pycocotools (the reference implementation, not a re-derivation).

Targets are a list of dicts per batch, one per image: boxes (float K x 4, x1 y1 x2 y2 in
pixels), labels (int64 K, 1-based: 0 is the detectors' background) and, for instance
segmentation, masks (uint8 K x H x W). An image with no objects is a valid negative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ..engine.task import Headline
from ..errors import UserError

MASK_THRESHOLD = 0.5  # Mask R-CNN's per-pixel probabilities -> the object's mask
COCO_AREA = 800 * 800  # the image area torchvision's detector defaults are made for


def mean_average_precision(instance: bool, curves: bool = False):
    """torchmetrics' COCO evaluation, for boxes (and masks); with `curves`, also the
    precision at each recall (COCO's 101 points) for the precision-recall curves. A
    UserError when the `detect` extra is missing."""
    try:
        from torchmetrics.detection import MeanAveragePrecision
        import pycocotools  # noqa: F401  (the backend torchmetrics is asked to use)
    except ImportError:
        raise UserError("detection metrics need pycocotools and torchmetrics: pip install "
                        "'cnnlab[detect]'.") from None
    return MeanAveragePrecision(iou_type=("bbox", "segm") if instance else "bbox",
                                class_metrics=True, backend="pycocotools",
                                extended_summary=curves)


def _on_cpu(item: dict, instance: bool) -> dict:
    out = {k: item[k].detach().cpu() for k in ("boxes", "labels", "scores") if k in item}
    if instance and "masks" in item:
        masks = item["masks"].detach().cpu()
        if masks.dim() == 4:  # predictions: N x 1 x H x W probabilities
            masks = masks[:, 0] > MASK_THRESHOLD
        out["masks"] = masks.bool()
    return out


@dataclass
class DetectionEvaluation:
    """COCO's numbers for one pass: box metrics, mask metrics for instance models, and AP per
    class (index 1.. as the targets number them)."""
    boxes: dict[str, float]
    masks: dict[str, float] | None
    per_class: dict[int, dict[str, float]] = field(default_factory=dict)
    images: int = 0
    # box precision at recall 0, .01, ..., 1 per class (IoU .5, all areas, 100 detections);
    # only when the tally was asked for curves
    curves: dict[int, list[float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        found = dict(self.boxes)
        if self.masks is not None:
            found |= {f"mask_{k}": v for k, v in self.masks.items()}
        return found


# torchmetrics' names -> ours (map_50 -> map50 ...)
_KEYS = {"map": "map", "map_50": "map50", "map_75": "map75", "map_small": "map_small",
         "map_medium": "map_medium", "map_large": "map_large", "mar_1": "mar1",
         "mar_10": "mar10", "mar_100": "mar100"}


def _numbers(found: dict, prefix: str = "") -> dict[str, float]:
    return {ours: float(found[f"{prefix}{theirs}"]) for theirs, ours in _KEYS.items()
            if f"{prefix}{theirs}" in found}


class DetectionTally:
    """Predictions and targets of one evaluation pass, on the CPU, for COCO's evaluation at
    the end (AP needs every detection of the pass ranked together)."""

    def __init__(self, instance: bool = False, curves: bool = False):
        self.instance, self.curves = instance, curves
        self.metric = mean_average_precision(instance, curves)
        self.images = 0

    def add(self, inputs, outputs: list[dict], targets: list[dict]) -> None:
        self.metric.update([_on_cpu(o, self.instance) for o in outputs],
                           [_on_cpu(t, self.instance) for t in targets])
        self.images += len(targets)

    def result(self) -> DetectionEvaluation:
        found = self.metric.compute()
        if self.instance:
            boxes, masks = _numbers(found, "bbox_"), _numbers(found, "segm_")
        else:
            boxes, masks = _numbers(found), None
        per_class = {}
        classes = found.get("classes")
        aps = found.get("bbox_map_per_class" if self.instance else "map_per_class")
        if classes is not None and aps is not None:
            for index, ap in zip(classes.reshape(-1).tolist(), aps.reshape(-1).tolist()):
                per_class[int(index)] = {"ap": float(ap)}
        curves = {}
        precision = found.get("bbox_precision" if self.instance else "precision")
        if self.curves and precision is not None and classes is not None:
            # T x R x K x A x M: IoU .5 is T = 0, all areas A = 0, 100 detections M = -1
            for k, index in enumerate(classes.reshape(-1).tolist()):
                curves[int(index)] = precision[0, :, k, 0, -1].clamp(min=0).tolist()
        return DetectionEvaluation(boxes, masks, per_class, self.images, curves)


class Detect:
    """The detectors' own summed losses in training; COCO mAP in evaluation."""
    name = "detect"
    headline = Headline("map50", "mAP@.5", "{:.2%}")
    instance = False

    @classmethod
    def from_config(cls, config) -> "Detect":
        return cls()

    def targets(self, splits):
        """The data set with its boxes (and instance masks) as targets."""
        if getattr(splits.train, "targets", None) is None:
            raise UserError(f"data set {splits.name} has no boxes to learn from; detection "
                            "needs one with boxes per image, e.g. --dataset shapes-objects, "
                            "coco:PATH or penn-fudan.")
        if self.instance and any("masks" not in t for t in splits.train.targets[:50]):
            raise UserError(f"data set {splits.name} has boxes but no instance masks; "
                            "--task instance needs a mask per object (use --task detect).")
        swap = lambda split: replace(split, labels=split.targets)  # noqa: E731
        # class 0 is the detectors' background; the set's first class is label 1
        return replace(splits, classes=["background", *splits.classes], train=swap(splits.train),
                       val=swap(splits.val), test=swap(splits.test))

    def model_options(self, info, splits, image_size) -> dict:
        """Sizes that suit the data, which --model-kwargs may override: the images' own size
        as min_size/max_size (torchvision resizes every image to 800 pixels otherwise), and
        anchors from the objects' sizes: the smallest level's anchor the power of two at
        or below the 5th percentile of the training boxes' sides, doubling per level."""
        options = {}
        if image_size is not None and "min_size" in info.options:
            options |= {"min_size": min(image_size), "max_size": max(image_size)}
            # COCO's numbers (256 pyramid channels, 2000 proposals, 512 sampled per image)
            # suit 800-pixel photographs; scaled to the images' area, never below a floor.
            area = image_size[0] * image_size[1] / COCO_AREA
            if "fpn_channels" in info.options:
                options["fpn_channels"] = 64 if max(image_size) <= 128 else (
                    128 if max(image_size) <= 320 else 256)
                if "mask_channels" in info.options:
                    # Mask R-CNN's head, twice the pyramid's width: on shapes-objects 64
                    # channels reached mask mAP@.5 63% in 4 epochs, 128 94%, 256 84%
                    # at a third of the speed (measured, README)
                    options["mask_channels"] = min(256, 2 * options["fpn_channels"])
            if "proposals" in info.options:
                options["proposals"] = int(min(2000, max(100, 2000 * area)))
                options["sampled_rois"] = int(min(512, max(64, 512 * area)))
        if "anchor_sizes" in info.options and info.family != "fcos":  # FCOS: strides, no boxes
            boxes = torch.cat([t["boxes"] for t in splits.train.labels[:2000]])
            if len(boxes):
                sides = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1).sqrt()
                base = 2 ** max(2, int(math.log2(float(sides.quantile(0.05)))))
                options["anchor_sizes"] = tuple((base * 2 ** level,) for level in range(5))
        return options

    def train_forward(self, model, inputs: torch.Tensor, targets: list[dict]):
        """A detector in training mode takes the targets too and returns its losses."""
        if not self.instance:
            targets = [{k: v for k, v in t.items() if k != "masks"} for t in targets]
        return model(list(inputs), targets)

    def loss(self, losses: dict[str, torch.Tensor], targets) -> tuple[torch.Tensor, dict]:
        return sum(losses.values()), losses

    def batch_sums(self, losses: dict[str, torch.Tensor], targets) -> dict[str, torch.Tensor]:
        # each part of the objective, weighted by the batch's images like the total
        return {name: value.detach() * len(targets) for name, value in losses.items()}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        return {name: value / seen for name, value in sums.items()}

    def accumulator(self) -> DetectionTally:
        return DetectionTally(self.instance)


class Instance(Detect):
    """Mask R-CNN: boxes and a mask per object; mask mAP beside box mAP."""
    name = "instance"
    headline = Headline("mask_map50", "mask mAP@.5", "{:.2%}")
    instance = True
