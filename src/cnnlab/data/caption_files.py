"""Images with sentences (--task caption): the in-memory form, and the user's own sets in the
two layouts captioning papers use.

    flickr8k:PATH       Flickr8k as it is distributed (Hodosh et al. 2013):
                            PATH/Flicker8k_Dataset/<name>.jpg   (the release's own spelling)
                            PATH/Flickr8k.token.txt             <name>.jpg#0<TAB>A sentence .
                            PATH/Flickr_8k.trainImages.txt, Flickr_8k.devImages.txt,
                            Flickr_8k.testImages.txt            one <name>.jpg a line
                        (the four text files may also sit in PATH/Flickr8k_text/). train and
                        dev images train (the catalogue holds out a tenth of them for
                        validation), test images test; images in no list are not used.
    coco-captions:PATH  COCO captions: PATH/captions_<part>.json (or PATH/annotations/...),
                        each {"images": [{id, file_name}], "annotations": [{image_id,
                        caption}]}, its images in PATH/<part>/ (COCO's train2017/, val2017/) or
                        PATH/images/. With a train part and a val part, val is the test split;
                        otherwise every part is one set that the catalogue splits.

    flickr8k            the catalogue's Flickr8k: DATA_DIR/flickr8k/ in the layout above;
                        --download fetches the original release's two archives (1 GB) from a
                        mirror (its official form, at the University of Illinois, no longer
                        answers) and extracts them there
    coco-captions       the catalogue's COCO captions: DATA_DIR/coco/annotations/
                        captions_val2017.json and DATA_DIR/coco/val2017/ (5,000 images, split
                        by the catalogue); --download fetches COCO's 2017 annotations (250 MB)
                        and validation images (1 GB). The training images (19 GB) are not
                        fetched: place train2017/ there yourself and use coco-captions:PATH.

What is left out, with its reason for RUN/skipped.txt: an image file that is missing or
unreadable, an image without any caption, a line of the token file that is not
"<name>#<n><TAB>sentence", an annotation without a text caption or naming no image. Images
are resized straight to SIDE x SIDE as they are decoded (no crop: nothing a sentence names is
cut off), so they stack into one tensor.
"""
from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as F

from ..errors import UserError
from .decode import default_workers
from .images import BadImage, decode_image
from .sources import LabelledImages
from .standard import DOWNLOAD_ERRORS, missing_files
from .transforms import to_channels

SIDE = 128  # the working size: 8,000 Flickr8k images are then 390 MB in memory
IMAGE_FOLDER, TOKENS = "Flicker8k_Dataset", "Flickr8k.token.txt"
LISTS = {"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt",
         "test": "Flickr_8k.testImages.txt"}
MIN_IMAGES = 3  # a train, a validation and a test split need at least this many
FLICKR8K_URLS = ["https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"
                 "Flickr8k_Dataset.zip",
                 "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"
                 "Flickr8k_text.zip"]
COCO_URLS = ["http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
             "http://images.cocodataset.org/zips/val2017.zip"]
COCO_PART = "val2017"


@dataclass
class CaptionedImages(LabelledImages):
    """Images at one size with their reference sentences: targets[i]["captions"] is image i's
    list of sentences (raw text; the task tokenises them). `labels` only stratify the
    catalogue's split (the layout of a generated scene; 0 for photographs)."""
    targets: list[dict]
    problems: list[tuple[str, str]] = field(default_factory=list)


def captioned_images(items: list[tuple[Path, list[str]]], problems: list[tuple[str, str]],
                     source: str, side: int = SIDE) -> CaptionedImages:
    """(file, sentences) pairs decoded in threads at side x side RGB; an unreadable file or
    one without sentences is left out with its reason."""
    problems = list(problems)
    usable = []
    for file, sentences in items:
        if sentences:
            usable.append((file, sentences))
        else:
            problems.append((str(file), "no caption names this image; it is left out."))
    with ThreadPoolExecutor(max(1, default_workers())) as pool:
        decoded = list(pool.map(lambda item: _decode(item[0], side), usable))
    images, targets = [], []
    for (file, sentences), (image, reason) in zip(usable, decoded):
        if image is None:
            problems.append((str(file), reason))
        else:
            images.append(image)
            targets.append({"captions": list(sentences)})
    if len(images) < MIN_IMAGES:
        first = f"; the first problem: {problems[0][0]}: {problems[0][1]}" if problems else ""
        raise UserError(f"{source} has {len(images)} usable captioned image(s); a train, a "
                        f"validation and a test split need at least {MIN_IMAGES}{first}")
    return CaptionedImages(torch.stack(images), torch.zeros(len(images), dtype=torch.int64),
                           ["image"], targets, problems)


def _decode(file: Path, side: int):
    try:
        image = to_channels(decode_image(file), 3)
    except BadImage as exc:
        return None, str(exc)
    return F.resize(image, [side, side], antialias=True).contiguous(), ""


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 text file ({exc}).") from None


# --- Flickr8k ------------------------------------------------------------------------------

def flickr8k(path: str | Path):
    """PATH in Flickr8k's layout -> (train, test) CaptionedImages."""
    root = _folder(path)
    text = root / "Flickr8k_text" if (root / "Flickr8k_text" / TOKENS).is_file() else root
    for needed in [TOKENS, *LISTS.values()]:
        if not (text / needed).is_file():
            raise UserError(f"{root} has no {needed}; a Flickr8k folder holds {IMAGE_FOLDER}/, "
                            f"{TOKENS} and {', '.join(LISTS.values())}.")
    if not (root / IMAGE_FOLDER).is_dir():
        raise UserError(f"{root} has no {IMAGE_FOLDER}/ folder of images.")
    captions, problems = _flickr_tokens(text / TOKENS)
    parts = {}
    for part, listing in LISTS.items():
        names = [line.strip() for line in _text(text / listing).splitlines() if line.strip()]
        parts[part] = [(root / IMAGE_FOLDER / name, captions.get(name, [])) for name in names]
    train = captioned_images(parts["train"] + parts["dev"], problems, f"{root} (train and dev)")
    test = captioned_images(parts["test"], [], f"{root} (test)")
    return train, test


def flickr8k_release(data_dir: str = "data", download: bool = False):
    """The catalogue's `flickr8k`: DATA_DIR/flickr8k, fetched first with --download."""
    root = Path(data_dir) / "flickr8k"
    needed = [root / IMAGE_FOLDER, root / TOKENS, *(root / name for name in LISTS.values())]
    _ensure("Flickr8k", needed, FLICKR8K_URLS, root, download,
            "Flickr8k_Dataset.zip and Flickr8k_text.zip extracted there")
    return flickr8k(root)


def _flickr_tokens(path: Path) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """{image name: its sentences} from lines "<name>#<n><TAB>sentence"."""
    captions: dict[str, list[str]] = {}
    problems = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, tab, sentence = line.partition("\t")
        name, hash_sign, _ = key.partition("#")
        if not tab or not hash_sign or not sentence.strip():
            problems.append((str(path), f"line {number} is not <name>#<n><TAB>sentence: "
                                        f"{line[:60]!r}; it is left out."))
            continue
        captions.setdefault(name.strip(), []).append(sentence.strip())
    return captions, problems


def _folder(path: str | Path) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    return root


# --- COCO captions -------------------------------------------------------------------------

def coco_captions_release(data_dir: str = "data", download: bool = False):
    """The catalogue's `coco-captions`: COCO 2017's validation part in DATA_DIR/coco, fetched
    first with --download, as one set the catalogue splits."""
    root = Path(data_dir) / "coco"
    needed = [root / "annotations" / f"captions_{COCO_PART}.json", root / COCO_PART]
    _ensure("COCO captions", needed, COCO_URLS, root, download,
            "annotations_trainval2017.zip and val2017.zip extracted there")
    return coco_captions(root, parts=[COCO_PART])


def coco_captions(path: str | Path, parts: list[str] | None = None):
    """PATH/captions_<part>.json with images in PATH/<part>/ or PATH/images/ -> (train, test)
    CaptionedImages when there are a train and a val part, else one CaptionedImages. `parts`
    (e.g. ["val2017"]) keeps only those listings."""
    root = _folder(path)
    listings = sorted(root.glob("captions_*.json")) + sorted(
        (root / "annotations").glob("captions_*.json"))
    if parts is not None:
        listings = [found for found in listings if found.stem[len("captions_"):] in parts]
    if not listings:
        raise UserError(f"{root} has no captions_*.json (COCO's caption annotations, e.g. "
                        "captions_val2017.json) in it or in its annotations/ folder.")
    parts: dict[str, tuple[list, list]] = {}
    for listing in listings:
        part = listing.stem[len("captions_"):]
        folder = root / part if (root / part).is_dir() else root / "images"
        if not folder.is_dir():
            raise UserError(f"{root} has no {part}/ or images/ folder for the images of "
                            f"{listing.name}.")
        parts[part] = _coco_items(listing, folder)
    train = [p for p in parts if "train" in p]
    test = [p for p in parts if "val" in p or "test" in p]
    if train and test:
        return tuple(captioned_images([i for p in chosen for i in parts[p][0]],
                                      [q for p in chosen for q in parts[p][1]],
                                      f"{root} ({', '.join(chosen)})")
                     for chosen in (train, test))
    return captioned_images([i for items, _ in parts.values() for i in items],
                            [q for _, found in parts.values() for q in found], str(root))


def _coco_items(listing: Path, folder: Path):
    """([(image file, its captions)], problems) from one COCO captions file."""
    try:
        document = json.loads(_text(listing))
    except json.JSONDecodeError as exc:
        raise UserError(f"{listing} is not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list) \
            or not isinstance(document.get("annotations"), list):
        raise UserError(f"{listing} is not COCO captions: it needs an \"images\" list and an "
                        "\"annotations\" list.")
    files, problems = {}, []
    for entry in document["images"]:
        if isinstance(entry, dict) and isinstance(entry.get("file_name"), str) and "id" in entry:
            files[entry["id"]] = folder / entry["file_name"]
        else:
            problems.append((str(listing), f"an image entry without an id and a file_name: "
                                           f"{str(entry)[:60]}; it is left out."))
    captions: dict = {key: [] for key in files}
    for entry in document["annotations"]:
        ok = isinstance(entry, dict) and isinstance(entry.get("caption"), str) \
            and entry["caption"].strip() and entry.get("image_id") in captions
        if ok:
            captions[entry["image_id"]].append(entry["caption"].strip())
        else:
            problems.append((str(listing), f"annotation {str(entry)[:60]} has no text caption "
                                           "or names no image entry; it is left out."))
    return [(files[key], captions[key]) for key in files], problems


# --- fetching (--download) -------------------------------------------------------------------

def _ensure(title: str, needed: list[Path], urls: list[str], root: Path, download: bool,
            hint: str) -> None:
    """The files in place, fetched first if asked for; else one sentence naming them."""
    absent = lambda: [path for path in needed if not path.exists()]  # noqa: E731
    if download and absent():
        try:
            for url in urls:
                _extract(_download(url, root), root)
        except DOWNLOAD_ERRORS + (zipfile.BadZipFile,) as exc:
            raise missing_files(title, absent() or needed, hint, exc) from None
    if absent():
        raise missing_files(title, absent(), hint)


def _download(url: str, root: Path) -> Path:
    """The archive in `root`; one already there is used as it is (never fetched twice)."""
    archive = root / url.rsplit("/", 1)[1]
    if not archive.is_file():
        from torchvision.datasets.utils import download_url
        # under another name until complete: a broken download is never taken for the archive
        partial = archive.with_name(archive.name + ".part")
        download_url(url, str(root), partial.name)
        partial.replace(archive)
    return archive


def _extract(archive: Path, root: Path) -> None:
    """Every member not already there (a file cnnlab did not create is never replaced),
    without the __MACOSX/ folder of resource forks that Flickr8k's archives carry."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            if not member.startswith("__MACOSX/") and not (root / member).exists():
                zipped.extract(member, root)
