"""`cnnlab predict --format coco`: the detections as a COCO results file, the list that
pycocotools' `COCO.loadRes` and every COCO leaderboard read:

    [{"image_id", "category_id", "bbox": [x, y, width, height], "score"
      (, "segmentation": {"size": [h, w], "counts": RLE}) }, ...]

The ids must be the ground truth's for COCOeval to match them. A run trained on a COCO
folder (`--dataset coco:PATH`) takes them from that folder's annotations: the image id of
each predicted file listed there, the category id of each class. Otherwise (or for a file the
annotations do not list) the image id is the file name's number where it is one (COCO's own
000000397133.jpg is image 397133) or else its position among the files, and the category id
is cnnlab's label (1..K, the classes in order); the result says which ids were chosen.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..data.coco_folder import coco_ids, mask_api
from ..errors import UserError

RESULTS_FILE = "detections.coco.json"


def _known_ids(dataset: str):
    """({label: category id}, {image path: image id}) of the run's COCO folder, or Nones."""
    if not dataset.startswith("coco:"):
        return None, None
    try:
        return coco_ids(dataset.partition(":")[2])
    except UserError:  # moved or deleted since training: fall back to cnnlab's own ids
        return None, None


def _image_id(file: str, position: int, images: dict | None):
    if images is not None and str(Path(file).resolve()) in images:
        return images[str(Path(file).resolve())], True
    stem = Path(file).stem
    return (int(stem), False) if stem.isdigit() else (position, False)


def coco_results(found: list[tuple[str, dict]], dataset: str, out: Path) -> dict:
    """Write RESULTS_FILE in `out` for (file, detections) pairs; {"file", "ids"}: the path and
    a sentence saying where its ids come from."""
    categories, images = _known_ids(dataset)
    entries, matched = [], 0
    api = mask_api() if any("masks" in f for _, f in found) else None
    for position, (file, detections) in enumerate(found, start=1):
        image_id, known = _image_id(file, position, images)
        matched += known
        for i, (box, label, score) in enumerate(zip(detections["boxes"].tolist(),
                                                    detections["labels"].tolist(),
                                                    detections["scores"].tolist())):
            x1, y1, x2, y2 = box
            entry = {"image_id": image_id,
                     "category_id": categories.get(label, label) if categories else label,
                     "bbox": [round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                     "score": round(score, 5)}
            if api is not None:
                rle = api.encode(np.asfortranarray(detections["masks"][i].numpy(), np.uint8))
                entry["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
            entries.append(entry)
    path = out / RESULTS_FILE
    atomic_write_text(path, json.dumps(entries))
    return {"file": str(path), "ids": _ids_sentence(dataset, categories, matched, len(found))}


def _ids_sentence(dataset: str, categories, matched: int, files: int) -> str:
    if categories is None:
        where = (f"{dataset}'s annotations could not be read" if dataset.startswith("coco:")
                 else "the run was not trained on a COCO folder")
        return (f"{where}, so category ids are cnnlab's labels 1..K and image ids the file "
                "names' numbers (or the files' positions).")
    rest = "" if matched == files else (f"; the other {files - matched} take the file name's "
                                        "number or their position")
    return (f"category ids are {dataset}'s; {matched} of {files} image ids come from its "
            f"annotations{rest}.")
