"""The public action-recognition sets: UCF101 and HMDB51, split 1 of each, read in the
exact layout their archives extract to:

    DATA_DIR/UCF-101/<Class>/v_<Class>_gNN_cNN.avi            UCF101.rar
    DATA_DIR/ucfTrainTestlist/classInd.txt                   "1 ApplyEyeMakeup", one a line
                              trainlist01.txt                "<Class>/<video>.avi 1"
                              testlist01.txt                 "<Class>/<video>.avi"
    DATA_DIR/hmdb51/<class>/<video>.avi                      hmdb51_org.rar (a .rar per class)
    DATA_DIR/hmdb51/testTrainMulti_7030_splits/<class>_test_split1.txt
                                                             "<video>.avi T": T = 1 train,
                                                             2 test, 0 in neither

torchvision has UCF101 and HMDB51 classes, but in 0.29 (the version installed here) they
decode through TorchCodec, a separate package, and have no download; so the lists are read
here and every video through data/video_files.read_clip (PyAV). A listed video that is
missing or unreadable is left out with its reason (RUN/skipped.txt). Both sets cut several
clips from one longer video (UCF101's groups gNN): the official splits keep each such video
on one side, so only they are used for testing. Validation is carved from the training list
at random, so it shares source videos with training and can read higher than the test.

Archives are fetched only with --download, from the authors' servers. They are RAR files,
which Python's standard library cannot open: an extracting program (unrar, 7z, bsdtar or
unar) must be installed, and is looked for before anything is downloaded.
"""
from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from ..errors import UserError
from .standard import DOWNLOAD_ERRORS, missing_files
from .video_files import VideoClips, load_clips, require_pyav

UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar"
UCF101_SPLITS_URL = ("https://www.crcv.ucf.edu/data/UCF101/"
                     "UCF101TrainTestSplits-RecognitionTask.zip")
HMDB51_URL = "https://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/hmdb51_org.rar"
HMDB51_SPLITS_URL = ("https://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/"
                     "test_train_splits.rar")
HMDB51_TAGS = {"1": "train", "2": "test"}  # "0": in neither part of this split

# Each command extracts an archive keeping its paths and skipping files already there (a
# file cnnlab did not create is never replaced); the archive and folder are appended below.
RAR_TOOLS = {"unrar": ["unrar", "x", "-o-", "-idq"], "7z": ["7z", "x", "-aos", "-bd"],
             "bsdtar": ["bsdtar", "-x", "-k", "-f"], "unar": ["unar", "-s", "-q"]}


# --- fetching ------------------------------------------------------------------------------

def rar_tool() -> list[str]:
    """The first extracting program found; UserError naming them when there is none."""
    for name, command in RAR_TOOLS.items():
        if shutil.which(name):
            return command
    raise UserError("the archives are RAR files and no program to extract them was found; "
                    f"install one of {', '.join(RAR_TOOLS)} (for example apt install unrar), "
                    "or download and extract them yourself.")


def _extract_rar(command: list[str], archive: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if command[0] == "unar":
        args = [*command, "-o", str(folder), str(archive)]
    elif command[0] == "7z":
        args = [*command, f"-o{folder}", str(archive)]
    elif command[0] == "bsdtar":
        args = [*command, str(archive), "-C", str(folder)]
    else:
        args = [*command, str(archive), f"{folder}/"]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"{command[0]} could not extract {archive}: "
                      f"{' '.join(done.stderr.split())[:200]}")


def _download(url: str, folder: Path) -> Path:
    from torchvision.datasets.utils import download_url

    download_url(url, str(folder))  # kept when already there: a file is never fetched twice
    return folder / url.rsplit("/", 1)[1]


def _extract_zip(archive: Path, folder: Path) -> None:
    """Like the RAR tools above: files already there are kept."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            if not (folder / member).exists():
                zipped.extract(member, folder)


def _fetch_ucf101(root: Path) -> None:
    tool = rar_tool()  # before 6.5 GB are fetched for nothing
    _extract_rar(tool, _download(UCF101_URL, root), root)
    _extract_zip(_download(UCF101_SPLITS_URL, root), root)


def _fetch_hmdb51(root: Path) -> None:
    tool = rar_tool()
    archives = root / "archives"
    _extract_rar(tool, _download(HMDB51_SPLITS_URL, root), root)
    _extract_rar(tool, _download(HMDB51_URL, root), archives)
    for per_class in sorted(archives.glob("*.rar")):  # the outer archive holds one per class
        _extract_rar(tool, per_class, root)


def _ensure(title: str, needed: list[Path], hint: str, download: bool, fetch) -> None:
    """The files in place, fetched first if asked for; else one sentence naming them."""
    absent = lambda: [path for path in needed if not path.exists()]  # noqa: E731
    if download and absent():
        try:
            fetch()
        except DOWNLOAD_ERRORS + (zipfile.BadZipFile,) as exc:
            if absent():
                raise missing_files(title, absent(), hint, exc) from None
    if absent():
        raise missing_files(title, absent(), hint)


# --- reading the lists ---------------------------------------------------------------------

def _lines(path: Path) -> list[list[str]]:
    """The whitespace-separated fields of every non-empty line (the lists have CRLF ends)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path} could not be read ({exc.strerror or exc}).") from None
    return [line.split() for line in text.splitlines() if line.strip()]


def _ucf101_classes(path: Path) -> list[str]:
    rows = _lines(path)
    try:
        numbered = sorted((int(index), name) for index, name in rows)
    except ValueError:
        raise UserError(f"{path} is not UCF101's classInd.txt; every line should be "
                        "'<number> <Class>'.") from None
    return [name for _, name in numbered]


def _ucf101_part(base: Path, listing: Path, classes: list[str]):
    """(files, labels, problems) of one list: the class is the path's folder."""
    index = {name: i for i, name in enumerate(classes)}
    files, labels, problems = [], [], []
    for number, fields in enumerate(_lines(listing), start=1):
        name = fields[0].replace("\\", "/")
        folder = name.split("/")[0]
        if folder not in index:
            problems.append((f"{listing} line {number}", f"{folder} is not a class of "
                             "classInd.txt"))
            continue
        files.append(base / name)
        labels.append(index[folder])
    return files, labels, problems


def ucf101(data_dir: str, download: bool = False) -> tuple[VideoClips, VideoClips]:
    """(train, test) of UCF101's split 1: 101 actions, each video 8 frames of 112x112."""
    require_pyav()
    root = Path(data_dir).expanduser()
    base, lists = root / "UCF-101", root / "ucfTrainTestlist"
    needed = [base, *(lists / n for n in ("classInd.txt", "trainlist01.txt", "testlist01.txt"))]
    _ensure("UCF101", needed, f"from {UCF101_URL} and {UCF101_SPLITS_URL}, extracted into "
            f"{root}", download, lambda: _fetch_ucf101(root))
    classes = _ucf101_classes(lists / "classInd.txt")
    return tuple(_clips(*_ucf101_part(base, lists / name, classes), classes)
                 for name in ("trainlist01.txt", "testlist01.txt"))


def _hmdb51_parts(root: Path, splits: Path):
    """{"train": (files, labels), "test": ...} and the problems, from the split-1 files."""
    listings = sorted(splits.glob("*_test_split1.txt"))
    if not listings:
        raise UserError(f"{splits} holds no <class>_test_split1.txt files; extract "
                        "test_train_splits.rar there.")
    classes = [p.name[:-len("_test_split1.txt")] for p in listings]
    parts = {"train": ([], []), "test": ([], [])}
    problems = []
    for label, (name, listing) in enumerate(zip(classes, listings)):
        for number, fields in enumerate(_lines(listing), start=1):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                problems.append((f"{listing} line {number}", "should be '<video>.avi 0|1|2'"))
                continue
            if fields[1] in HMDB51_TAGS:
                files, labels = parts[HMDB51_TAGS[fields[1]]]
                files.append(root / name / fields[0])
                labels.append(label)
    return classes, parts, problems


def hmdb51(data_dir: str, download: bool = False) -> tuple[VideoClips, VideoClips]:
    """(train, test) of HMDB51's split 1: 51 actions, each video 8 frames of 112x112."""
    require_pyav()
    root = Path(data_dir).expanduser() / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    _ensure("HMDB51", [splits], f"from {HMDB51_URL} and {HMDB51_SPLITS_URL}, extracted into "
            f"{root} (the first holds one .rar per class, each extracted there too)", download,
            lambda: _fetch_hmdb51(root))
    classes, parts, problems = _hmdb51_parts(root, splits)
    train = _clips(*parts["train"], problems, classes)
    return train, _clips(*parts["test"], [], classes)


def _clips(files: list[Path], labels: list[int], problems: list, classes: list[str]):
    """The listed videos as clips, those missing from the disk left out with a reason."""
    present = [(f, label) for f, label in zip(files, labels) if f.is_file()]
    problems = problems + [(str(f), "listed in the split but not on the disk")
                           for f in files if not f.is_file()]
    if not present:
        raise UserError(f"none of the {len(files)} videos of a split list are on the disk; "
                        "extract the videos beside the lists (see `cnnlab datasets`).")
    return load_clips([f for f, _ in present], [label for _, label in present], classes,
                      problems=problems)
