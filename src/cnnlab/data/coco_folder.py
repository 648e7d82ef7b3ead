"""`coco:PATH`: the user's own detection set, in COCO's JSON format, the ecosystem's exchange
format (CVAT, Label Studio, Roboflow and labelme converters all export it):

    PATH/annotations.json   (or PATH/instances.json: either name; one of them, not both)
    PATH/images/<file_name> each image entry's file_name, relative to images/ (subfolders fine)

The JSON holds "images" ({id, file_name, width, height}), "categories" ({id, name}) and
"annotations" ({id, image_id, category_id, bbox [x, y, w, h] in pixels, segmentation,
iscrowd}). What becomes of them:

- categories may have any ids (COCO's own skip numbers): they become labels 1..K in id order
  (0 is the background), named by their "name";
- bbox [x, y, w, h] becomes x1, y1, x2, y2 = x, y, x + w, y + h (both pixel edges);
- segmentation, as polygons, compressed RLE (a string) or uncompressed RLE (a list of counts),
  becomes the instance mask through pycocotools.mask, imported only when a set has one (it is
  the optional extra `pip install 'cnnlab[detect]'`). The set has masks when every usable
  annotation has a segmentation; when some have none, the set loads with boxes only (and says
  so among its problems), as an instance model needs a mask for every object;
- iscrowd annotations (a region of many objects, COCO's "crowd") are kept out of the targets:
  they are not one object to find. An image whose annotations are all crowds is left out, as
  below, so that its crowd is not taught as background. COCO's own evaluation would also
  forgive detections inside a crowd region; here there is no such region, so a detector that
  finds people in a crowd is scored as if it found nothing there.

An annotation that cannot be used is left out with its reason, naming its id and its image
file, for RUN/skipped.txt: an unknown category id, an image id no image entry has, a box of
zero or negative width or height, a box wholly outside its image, a segmentation that is
malformed, of another size or covers no pixel. A box partly outside is clipped to the image
and kept. An image file that is missing or unreadable, or whose size is not the one its entry
gives, is left out with its annotations. An image entry with no annotations at all is kept: a
valid negative (nothing to find there). An image whose annotations were all left out is not:
the objects in it are real, and without their boxes it would teach that they are background.

The images are brought to one working size as masks:PATH does: the most common (H, W) of the
usable images, others resized straight to it (boxes scaled, masks by nearest neighbour).
"""
from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .boxed_files import ImageLeftOut, boxed_images
from .boxes import BoxedImages, empty_target
from .images import BadImage

ANNOTATION_FILES = ("annotations.json", "instances.json")
IMAGES = "images"
# Fewer usable images than this cannot give a train, a validation and a test split.
MIN_IMAGES = 3


def coco_folder(path: str | Path) -> BoxedImages:
    """PATH/annotations.json (or instances.json) and PATH/images -> BoxedImages."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    listing = _annotation_file(root)
    if not (root / IMAGES).is_dir():
        raise UserError(f"{root} has no {IMAGES}/ folder; put the images there, each at the "
                        f"file_name {listing.name} gives it (relative to {IMAGES}/).")
    document = _read_json(listing)
    labels, names = _categories(document, listing)
    problems: list[tuple[str, str]] = []
    images = _image_entries(document, listing, root / IMAGES, problems)
    annotations = _annotations(document, listing)
    by_image: dict[object, list[dict]] = {key: [] for key in images}
    for annotation in annotations:
        image_id = annotation.get("image_id")
        if _key(image_id) not in by_image:
            problems.append((str(listing), f"annotation {annotation.get('id', '?')}: its image_id "
                                           f"{image_id!r} names no entry of \"images\"."))
        else:
            by_image[_key(image_id)].append(annotation)

    usable = [a for found in by_image.values() for a in found if not a.get("iscrowd")]
    shapeless = [a.get("id", "?") for a in usable if not a.get("segmentation")]
    with_masks = bool(usable) and not shapeless
    if shapeless and len(shapeless) < len(usable):
        shown = ", ".join(str(i) for i in shapeless[:5]) + (", ..." if len(shapeless) > 5 else "")
        problems.append((str(listing), f"annotation(s) {shown} have no segmentation while others "
                                       "have one: the set is loaded with boxes only, without "
                                       "instance masks."))
    api = mask_api() if with_masks else None
    items = [(file, partial(_target, file, width, height, by_image[key], labels, api,
                            listing.name), _lost(by_image[key]))
             for key, (file, width, height) in images.items()]
    return boxed_images(items, names, problems, source=str(root), least=MIN_IMAGES)


def coco_ids(path: str | Path) -> tuple[dict[int, object], dict[str, object]]:
    """The ids a COCO results file must use for this folder's annotations: {cnnlab label
    1..K: category id} and {resolved image path: image id}."""
    root = Path(path)
    listing = _annotation_file(root)
    document = _read_json(listing)
    labels, _ = _categories(document, listing)
    images = _image_entries(document, listing, root / IMAGES, [])
    return ({label: key for key, label in labels.items()},
            {str(file.resolve()): key for key, (file, *_) in images.items()})


def _lost(annotations: list[dict]) -> str:
    """What is left out with an image that cannot be used: its annotations, by id."""
    if not annotations:
        return ""
    ids = [str(a.get("id", "?")) for a in annotations]
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    return f" Its annotation(s) {shown} are left out with it."


def _annotation_file(root: Path) -> Path:
    found = [root / name for name in ANNOTATION_FILES if (root / name).is_file()]
    if not found:
        raise UserError(f"{root} has no {' or '.join(ANNOTATION_FILES)}; put the COCO-format "
                        f"annotations there, and the images in {root / IMAGES}/.")
    if len(found) > 1:
        raise UserError(f"{root} holds both {' and '.join(ANNOTATION_FILES)}; keep the one that "
                        "describes the images in images/.")
    return found[0]


def _read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 text file ({exc}).") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise UserError(f"{path} is not COCO-format annotations: it needs an object with an "
                        "\"images\" list, a \"categories\" list and an \"annotations\" list.")
    return document


def _key(value):
    """Ids compare as JSON wrote them, except that 3 and 3.0 are one id."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, (int, str)) else repr(value)


def _categories(document: dict, path: Path) -> tuple[dict, list[str]]:
    """{category id: label 1..K in id order} and the K names."""
    entries = document.get("categories")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path} has no \"categories\"; list each object class as "
                        "{\"id\": 1, \"name\": \"cat\"}.")
    found: dict = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(_key(entry.get("id")), int) \
                or isinstance(entry.get("id"), bool):
            raise UserError(f"{path} has a category without a whole-number id: {entry!r}.")
        key = _key(entry["id"])
        if key in found:
            raise UserError(f"{path} gives category id {key} twice; every category needs its "
                            "own id.")
        found[key] = str(entry.get("name", f"category {key}"))
    ids = sorted(found)
    return {key: label for label, key in enumerate(ids, start=1)}, [found[key] for key in ids]


def _image_entries(document: dict, path: Path, folder: Path,
                   problems: list[tuple[str, str]]) -> dict:
    """{image id: (file, width or None, height or None)} in the order of the file."""
    images: dict = {}
    for entry in document["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) \
                or "id" not in entry:
            problems.append((str(path), f"an image entry without an id and a file_name: "
                                        f"{str(entry)[:80]}"))
            continue
        file, key = folder / entry["file_name"], _key(entry["id"])
        if key in images:
            problems.append((str(file), f"image id {key!r} is given twice in {path.name}; the "
                                        "second entry is left out."))
            continue
        size = [entry.get("width"), entry.get("height")]
        size = [int(v) if isinstance(v, (int, float)) and v > 0 else None for v in size]
        images[key] = (file, *size)
    return images


def _annotations(document: dict, path: Path) -> list[dict]:
    entries = document.get("annotations", [])
    if not isinstance(entries, list):
        raise UserError(f"{path}: \"annotations\" is not a list.")
    return [entry if isinstance(entry, dict) else {"id": repr(entry)[:40]} for entry in entries]


def mask_api():
    try:
        from pycocotools import mask
    except ImportError:
        raise UserError("COCO segmentations (polygons and RLE) are decoded by pycocotools, "
                        "which is not installed; install it with pip install 'cnnlab[detect]'."
                        ) from None
    return mask


def _target(file: Path, width: int | None, height: int | None, annotations: list[dict],
            labels: dict, mask_api, listing: str, image: torch.Tensor):
    """The image's target at its own size, and the annotations left out with their reasons."""
    h, w = image.shape[-2:]
    if (width is not None and width != w) or (height is not None and height != h):
        raise BadImage(f"{file} is {w}x{h} pixels, but {listing} gives {width}x{height}; its "
                       "boxes would not fit it.")
    target = empty_target(h, w, mask_api is not None)
    objects = [a for a in annotations if not a.get("iscrowd")]
    if not annotations:
        return target, []  # a valid negative: nothing to find in it
    dropped, boxes, found, masks = [], [], [], []
    for annotation in objects:
        try:
            box, label = _box(annotation, labels, w, h)
            if mask_api is not None:
                masks.append(_mask(mask_api, annotation["segmentation"], w, h))
        except _Unusable as exc:
            dropped.append((str(file), f"annotation {annotation.get('id', '?')}: {exc}"))
            continue
        boxes.append(box)
        found.append(label)
    if not found:
        why = ("its annotations are all crowd regions" if not objects else
               f"none of its {len(objects)} annotation(s) could be used")
        raise ImageLeftOut(f"{file}: {why}; without them it would teach that its objects "
                           "are background.", dropped)
    target["boxes"] = torch.tensor(boxes, dtype=torch.float32)
    target["labels"] = torch.tensor(found, dtype=torch.int64)
    if mask_api is not None:
        target["masks"] = torch.from_numpy(np.stack(masks))
    return target, dropped


class _Unusable(Exception):
    """One annotation cannot be used; the message is the reason."""


def _box(annotation: dict, labels: dict, w: int, h: int) -> tuple[list[float], int]:
    category = annotation.get("category_id")
    if _key(category) not in labels or isinstance(category, bool):
        raise _Unusable(f"unknown category id {category!r}; the categories' ids are "
                        f"{', '.join(str(k) for k in labels)}.")
    bbox = annotation.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)):
        raise _Unusable(f"its bbox {bbox!r} is not [x, y, width, height] in pixels.")
    x, y, bw, bh = bbox
    if bw <= 0 or bh <= 0:
        raise _Unusable(f"its box {bbox} has zero or negative size (width {bw}, height {bh}).")
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
    if x2 <= x1 or y2 <= y1:
        raise _Unusable(f"its box {bbox} lies wholly outside the {w}x{h} image.")
    return [float(x1), float(y1), float(x2), float(y2)], labels[_key(category)]


def _mask(mask_api, segmentation, w: int, h: int) -> np.ndarray:
    """uint8 H x W instance mask from polygons or RLE; _Unusable with the reason."""
    if isinstance(segmentation, list):
        polygons = segmentation
        if not polygons or not all(
                isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
                for p in polygons):
            raise _Unusable("its segmentation is not a list of polygons [x1, y1, x2, y2, ...] "
                            "of at least 3 points each.")
        rle = mask_api.merge(mask_api.frPyObjects(polygons, h, w))
    elif isinstance(segmentation, dict):
        rle = _rle(mask_api, segmentation, w, h)
    else:
        raise _Unusable("its segmentation is neither polygons nor RLE.")
    mask = mask_api.decode(rle)
    if not mask.any():
        raise _Unusable("its segmentation covers no pixel of the image.")
    return mask.astype(np.uint8)


def _rle(mask_api, segmentation: dict, w: int, h: int) -> dict:
    """A checked RLE dict for pycocotools. The counts are checked to cover the image exactly
    first: pycocotools' decoder writes one pixel per count without a bound, so a malformed RLE
    would write past the end of the mask instead of failing."""
    size, counts = segmentation.get("size"), segmentation.get("counts")
    if size != [h, w]:
        raise _Unusable(f"its RLE segmentation is for a {size!r} (height, width) image, not "
                        f"[{h}, {w}].")
    if isinstance(counts, (str, bytes)):  # compressed: COCO's own string form
        text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
        values = _compressed_counts(text)
    elif isinstance(counts, list) and all(isinstance(v, int) for v in counts):
        values = counts
    else:
        raise _Unusable("its RLE counts are neither a string nor a list of whole numbers.")
    if values is None or any(v < 0 for v in values) or sum(values) != h * w:
        raise _Unusable(f"its RLE counts do not add up to the image's {h * w} pixels.")
    if isinstance(counts, list):  # uncompressed: pycocotools compresses it first
        return mask_api.frPyObjects({"size": size, "counts": counts}, h, w)
    return {"size": size, "counts": text.encode("ascii")}


def _compressed_counts(text: str) -> list[int] | None:
    """The run lengths in COCO's compressed RLE string (pycocotools' rleFrString: 5 bits a
    character, offset by 48, with a continuation bit; from the third run on, each value is
    stored as the difference from the run two before); None if the string is cut short."""
    counts, p = [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                return None
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts
