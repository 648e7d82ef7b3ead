"""Where an export goes, and which existing files it may replace.

By default a run's export goes into the run folder (RUN/model.onnx, RUN/model.pt,
RUN/model.pt2), a pretrained model's into the current folder (efficientnet_lite0.onnx). The
preprocessing goes beside it as <file>.preprocess.json.

Exporting again is routine (after more training, or with --dynamic-batch), so a file that an
earlier `cnnlab export` wrote is replaced, as a build tool replaces its own outputs; every
export file carries cnnlab's mark inside (ONNX metadata, or an extra file in the .pt/.pt2
archive) so this is known from the file itself. Any other file is never replaced: the user
chooses another --out or removes it. Both files are written atomically.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..errors import UserError
from .preprocessing import MADE_BY

SIDECAR = ".preprocess.json"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def default_out(subject, suffix: str, uint8_input: bool) -> Path:
    stem = "model" if subject.run_dir is not None else subject.name
    stem += "-uint8" if uint8_input else ""
    return (subject.run_dir or Path(".")) / f"{stem}{suffix}"


def check_out(path: Path, fmt: str, suffixes: tuple[str, ...]) -> Path:
    """Refuse a bad --out before the work starts rather than after it."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"--out {path} must end in {' or '.join(suffixes)} for --format {fmt}.")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist.")
    for file, ours in ((path, _exported_by_cnnlab), (sidecar(path), _sidecar_by_cnnlab)):
        if file.is_dir() or (file.exists() and not ours(file)):
            raise UserError(f"{file} exists and was not written by cnnlab export; choose "
                            "another --out or remove it.")
    return path


def _exported_by_cnnlab(path: Path) -> bool:
    """Does the file carry the mark an earlier export put inside it?"""
    from .formats import MARK_FILE, MARK_KEY
    if zipfile.is_zipfile(path):  # TorchScript and .pt2 archives
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/extra/" + MARK_FILE) for name in archive.namelist())
    try:
        import onnx
        props = onnx.load(str(path), load_external_data=False).metadata_props
        return any(p.key == MARK_KEY and MADE_BY in p.value for p in props)
    except Exception:  # not ONNX, damaged, or onnx not installed: not provably ours
        return False


def _sidecar_by_cnnlab(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("made_by") == MADE_BY
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return False


def write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}.") from None
