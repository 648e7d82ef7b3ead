"""What `cnnlab track` leaves behind: the frame sheet (a PNG, or with --out FILE.mp4 the whole
video with the tracks drawn) and, beside it, FILE.tracks.json with every track's frames,
boxes and scores. Without --out they go to RUN/tracks/<what was tracked>.png.

A file is replaced only when cnnlab track wrote it (the PNG's 'Software' text, the JSON's
"written_by", the video's 'comment'), never one of the user's."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import UserError
from .sheet import MARK

PICTURES = (".png", ".mp4")
TRACKS_SUFFIX = ".tracks.json"


def default_out(run_dir: str | Path, source: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem or source)[:60] or "video"
    return Path(run_dir) / "tracks" / f"{slug}.png"


def tracks_file(out: Path) -> Path:
    return out.with_name(out.stem + TRACKS_SUFFIX)


def check_out(out: Path) -> tuple[Path, Path]:
    """(picture, tracks JSON) for --out, refused before any work if unusable."""
    if out.suffix.lower() not in PICTURES:
        raise UserError(f"--out {out} must end in .png (a frame sheet) or .mp4 (the video).")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: the folder {out.parent} does not exist.")
    for path in (out, tracks_file(out)):
        if path.exists() and not _ours(path):
            raise UserError(f"{path} exists and was not written by cnnlab track; choose "
                            "another --out or remove it.")
    return out, tracks_file(out)


def _ours(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text()).get("written_by") == MARK
        if path.suffix.lower() == ".mp4":
            from ..data.video_files import require_pyav
            with require_pyav().open(str(path)) as container:
                return container.metadata.get("comment") == MARK
        from PIL import Image
        with Image.open(path) as img:
            return img.info.get("Software") == MARK
    except (OSError, ValueError, AttributeError, UserError):
        return False


def write_tracks(path: Path, result: dict) -> None:
    keep = ("run", "task", "source", "sequences", "settings", "tracks")
    atomic_write_text(path, json.dumps({"written_by": MARK, **{k: result[k] for k in keep}},
                                       indent=1) + "\n")


def write_video(path: Path, pictures, fps: float = 8.0) -> None:
    """uint8 T x 3 x H x W frames as an MPEG-4 video through PyAV, marked as ours."""
    from ..data.video_files import require_pyav
    av = require_pyav()
    height, width = pictures.shape[-2:]
    temporary = path.with_name(f".{path.name}.partial.mp4")
    with av.open(str(temporary), "w") as container:
        container.metadata["comment"] = MARK
        stream = container.add_stream("mpeg4", rate=int(round(fps)))
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            array = picture[:, :stream.height, :stream.width].permute(1, 2, 0).numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    temporary.replace(path)
