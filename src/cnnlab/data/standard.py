"""The standard data sets the lectures train on: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100, cifar2.

CS428 trains its first CNNs on MNIST and CIFAR-10, and its worked example on "cifar2", the
airplanes and birds of CIFAR-10 relabelled 0 and 1. Each loader here returns the official
train and test splits as uint8 N x C x H x W tensors, read offline from `data_dir`; the
network is touched only when the caller asks for `download`.

CIFAR ships in two forms. The python form is a set of pickles, and unpickling a file can run
any code inside it, so cnnlab prefers the binary form and reads it with numpy. The python
form is accepted only through torchvision, which checks every file against the official md5
checksums before it unpickles anything.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .sources import LabelledImages

Splits = tuple[LabelledImages, LabelledImages]

# What a failed download can raise: no network (URLError is an OSError), a checksum mismatch
# (torchvision raises RuntimeError), a connection cut mid-transfer, a damaged archive.
DOWNLOAD_ERRORS = (OSError, RuntimeError, HTTPException, tarfile.TarError, EOFError)

# What torchvision's IDX reader raises on a damaged file: it checks the header with asserts,
# looks the element type up in a dict, and reshapes the rest.
IDX_ERRORS = (AssertionError, KeyError, TypeError, ValueError, RuntimeError, IndexError)

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

CIFAR_SIDE = 32
CIFAR_PIXELS = 3 * CIFAR_SIDE * CIFAR_SIDE  # R, G, B planes, each 32 rows of 32 bytes


def _listing(paths) -> str:
    paths = [str(path) for path in paths]
    return paths[0] if len(paths) == 1 else f"{', '.join(paths[:-1])} and {paths[-1]}"


def _why(exc: BaseException) -> str:
    # Exception texts can span lines (torchvision lists every mirror it tried); keep one line.
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def missing_files(title: str, paths, hint: str, reason: BaseException | None = None) -> UserError:
    """The one sentence that tells the user which files to put where, or how to fetch them."""
    problem = "is missing"
    if reason is not None:
        problem = f"could not be downloaded ({_why(reason)})"
    return UserError(f"{title} {problem}: put {_listing(paths)} in place ({hint}), "
                     f"or pass --download to fetch them when online.")


def _absent(paths) -> list[Path]:
    return [path for path in paths if not path.is_file()]


def _labelled(images: torch.Tensor, labels: torch.Tensor, classes: list[str],
              source: str) -> LabelledImages:
    """Check what a file promised before a bad label turns into a crash deep inside training."""
    if len(images) != len(labels):
        raise UserError(f"{source} has {len(images)} images but {len(labels)} labels.")
    outside = labels[(labels < 0) | (labels >= len(classes))]
    if len(outside):
        raise UserError(f"{source} has label {int(outside[0])}, outside 0..{len(classes) - 1} "
                        f"for its {len(classes)} classes.")
    return LabelledImages(images.contiguous(), labels.long(), list(classes))


# --- MNIST and Fashion-MNIST: torchvision reads the IDX files --------------------------------

def _idx_dataset(class_name: str, title: str, data_dir: str, download: bool) -> Splits:
    from torchvision import datasets

    cls = getattr(datasets, class_name)
    root = Path(data_dir).expanduser()
    raw = root / class_name / "raw"
    files, hint = [raw / name for name in IDX_FILES], "the unzipped IDX files"
    if download and _absent(files):
        try:  # downloads all four files, then reads the training pair
            cls(str(root), train=True, download=True)
        except DOWNLOAD_ERRORS + IDX_ERRORS as exc:
            if _absent(files):  # otherwise the files arrived, and reading them below says why
                raise missing_files(title, _absent(files), hint, exc) from None
    if _absent(files):
        raise missing_files(title, _absent(files), hint)
    try:
        splits = [cls(str(root), train=train) for train in (True, False)]
    except IDX_ERRORS as exc:
        raise UserError(f"the IDX files in {raw} could not be read ({_why(exc)}); "
                        f"replace them with the unzipped originals, or delete them and pass "
                        f"--download.") from None
    return tuple(_labelled(split.data.unsqueeze(1), split.targets, split.classes,
                           f"{title} in {raw}") for split in splits)


def mnist(data_dir: str, download: bool = False) -> Splits:
    """LeCun's 70,000 28 x 28 handwritten digits: 60,000 to train, 10,000 to test."""
    return _idx_dataset("MNIST", "MNIST", data_dir, download)


def fashion_mnist(data_dir: str, download: bool = False) -> Splits:
    """Zalando's drop-in replacement for MNIST: ten kinds of clothing, same sizes and format."""
    return _idx_dataset("FashionMNIST", "Fashion-MNIST", data_dir, download)


# --- CIFAR-10 and CIFAR-100: the binary release, read with numpy -----------------------------

@dataclass(frozen=True)
class CifarRelease:
    title: str
    folder: str                     # what the binary archive extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    names_file: str                 # class names, one a line
    label_bytes: int                # CIFAR-100 records carry a coarse label, then the fine one
    num_classes: int
    url: str
    md5: str
    python_folder: str              # the pickled release, accepted only with official checksums
    torchvision_class: str

    def files(self, root: Path) -> list[Path]:
        names = self.train_files + self.test_files + (self.names_file,)
        return [root / self.folder / name for name in names]

    def hint(self) -> str:
        return f"from {self.url.rsplit('/', 1)[1]} at https://www.cs.toronto.edu/~kriz/cifar.html"


CIFAR10 = CifarRelease(
    "CIFAR-10", "cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    ("test_batch.bin",), "batches.meta.txt", 1, 10,
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
    "cifar-10-batches-py", "CIFAR10")

CIFAR100 = CifarRelease(
    "CIFAR-100", "cifar-100-binary", ("train.bin",), ("test.bin",), "fine_label_names.txt", 2, 100,
    "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8",
    "cifar-100-python", "CIFAR100")


def read_cifar_binary(path: Path, label_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Records of label byte(s) then 3,072 pixel bytes; the last label byte is the class."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + CIFAR_PIXELS
    if raw.size == 0 or raw.size % record:
        raise UserError(f"{path} is not a CIFAR binary batch: its {raw.size} bytes are not a "
                        f"whole number of {record}-byte records.")
    records = raw.reshape(-1, record)
    # Each record stores whole planes (all red, then green, then blue), row by row: C x H x W.
    images = records[:, label_bytes:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
    labels = records[:, label_bytes - 1].astype(np.int64)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels)


def read_class_names(path: Path, count: int) -> list[str]:
    # The official files end with blank lines; they name no class.
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != count:
        raise UserError(f"{path} should list {count} class names, one a line, "
                        f"but lists {len(names)}.")
    return names


def _read_binary_release(release: CifarRelease, root: Path) -> Splits:
    folder = root / release.folder
    classes = read_class_names(folder / release.names_file, release.num_classes)

    def split(names: tuple[str, ...]) -> LabelledImages:
        parts = [read_cifar_binary(folder / name, release.label_bytes) for name in names]
        return _labelled(torch.cat([images for images, _ in parts]),
                         torch.cat([labels for _, labels in parts]), classes,
                         f"{release.title} in {folder}")

    return split(release.train_files), split(release.test_files)


def _read_python_release(release: CifarRelease, root: Path) -> Splits:
    """The pickled release, through torchvision, which refuses files whose md5 is not official."""
    from torchvision import datasets

    cls = getattr(datasets, release.torchvision_class)
    try:
        splits = [cls(str(root), train=train) for train in (True, False)]
    except RuntimeError:  # torchvision's "not found or corrupted": checked before unpickling
        raise UserError(
            f"{root / release.python_folder} does not hold the official {release.title} python "
            f"files (their md5 checksums do not match or some are missing), and cnnlab never "
            f"unpickles unverified files because unpickling can run code, so use the binary "
            f"version: put {_listing(release.files(root))} in place ({release.hint()}), or pass "
            f"--download to fetch them when online.") from None
    # torchvision holds CIFAR as N x H x W x C for PIL; cnnlab keeps channels first.
    return tuple(_labelled(torch.from_numpy(split.data).permute(0, 3, 1, 2),
                           torch.tensor(split.targets), split.classes,
                           f"{release.title} in {root / release.python_folder}")
                 for split in splits)


def _download_binary(release: CifarRelease, root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    try:  # the md5 is checked before extracting; the archive is dropped once extracted
        download_and_extract_archive(release.url, str(root), md5=release.md5, remove_finished=True)
    except DOWNLOAD_ERRORS as exc:
        raise missing_files(release.title, _absent(release.files(root)), release.hint(), exc) from None


def _cifar(release: CifarRelease, data_dir: str, download: bool) -> Splits:
    """Binary files if present; else a verified python release; else download the binary one."""
    root = Path(data_dir).expanduser()
    files = release.files(root)
    if not _absent(files):
        return _read_binary_release(release, root)
    if (root / release.python_folder).is_dir():
        try:
            return _read_python_release(release, root)
        except UserError:
            if not download:
                raise  # the refusal says why the pickles were not read
    if not download:
        raise missing_files(release.title, _absent(files), release.hint())
    _download_binary(release, root)
    if _absent(files):  # an archive whose contents were not laid out as the official one's
        raise missing_files(release.title, _absent(files), release.hint())
    return _read_binary_release(release, root)


def cifar10(data_dir: str, download: bool = False) -> Splits:
    """60,000 32 x 32 colour photographs in ten classes: 50,000 to train, 10,000 to test."""
    return _cifar(CIFAR10, data_dir, download)


def cifar100(data_dir: str, download: bool = False) -> Splits:
    """The same photographs' size and count as CIFAR-10, in 100 fine classes."""
    return _cifar(CIFAR100, data_dir, download)


# The CS428 worked example: only airplanes (CIFAR-10 class 0) and birds (class 2), relabelled.
CIFAR2_LABEL_MAP = {0: 0, 2: 1}
CIFAR2_CLASSES = ["airplane", "bird"]


def _two_classes(data: LabelledImages) -> LabelledImages:
    keep = torch.isin(data.labels, torch.tensor(list(CIFAR2_LABEL_MAP)))
    relabel = torch.full((len(data.classes),), -1, dtype=torch.int64)
    for old, new in CIFAR2_LABEL_MAP.items():
        relabel[old] = new
    return LabelledImages(data.images[keep], relabel[data.labels[keep]], list(CIFAR2_CLASSES))


def cifar2(data_dir: str, download: bool = False) -> Splits:
    """Airplane versus bird from CIFAR-10, as in the lecture: 10,000 to train, 2,000 to test."""
    train, test = cifar10(data_dir, download)
    return _two_classes(train), _two_classes(test)
