"""What `cnnlab track` follows objects through: a folder of frame images (in name order, 2
before 10), a video file (decoded by data/video_files.py through PyAV), or `crossing-shapes`,
generated clips whose objects' identities are known, so the tracks can be scored."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.crossing_clips import generate_crossing_clips
from ..data.images import decode_image
from ..errors import UserError
from . import GENERATED


@dataclass
class Sequence:
    name: str
    frames: torch.Tensor              # uint8 T x 3 x H x W
    truth: list[dict] | None = None   # per frame {"ids", "labels", "boxes", "masks"}, if known
    files: list[str] | None = None    # the frame files, for a folder


@dataclass
class Footage:
    sequences: list[Sequence]
    skipped: list[dict] = field(default_factory=list)  # {"file", "error"}: frames left out


def read_footage(source: str, clips: int = 1, seed: int = 0) -> Footage:
    """`source`: a folder of frames, a video file, or `crossing-shapes` (`clips` clips made
    from `seed`)."""
    if source == GENERATED:
        made = generate_crossing_clips(clips, seed=seed)
        return Footage([Sequence(f"{GENERATED} seed {seed} clip {i}", clip, truth)
                        for i, (clip, truth) in enumerate(zip(made.clips, made.truth))])
    if clips != 1:
        raise UserError(f"--clips is for the generated {GENERATED}; {source} is one video.")
    path = Path(source)
    if path.is_dir():
        return _folder(path)
    if path.is_file():
        return Footage([Sequence(path.name, _colour(_video(path)))])
    raise UserError(f"{source} is neither a folder of frames, a video file nor "
                    f"'{GENERATED}'.")


def _video(path: Path) -> torch.Tensor:
    try:  # imported here: PyAV is an optional extra, and only a video file needs it
        from ..data.video_files import read_frames
    except ImportError:
        raise UserError("this cnnlab cannot read video files yet; give a folder of frames "
                        "instead.") from None
    return read_frames(path)


def _name_order(path: Path):
    """frame2.png before frame10.png: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _folder(path: Path) -> Footage:
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=_name_order)
    if not files:
        raise UserError(f"folder {path} holds no frame images.")
    frames, kept, skipped = [], [], []
    for file in files:
        try:
            frame = _colour(decode_image(file)[None])[0]
        except UserError as exc:
            skipped.append({"file": str(file), "error": str(exc)})
            continue
        if frames and frame.shape != frames[0].shape:
            skipped.append({"file": str(file), "error": f"{file} is {frame.shape[2]} x "
                            f"{frame.shape[1]} pixels, unlike the frames before it "
                            f"({frames[0].shape[2]} x {frames[0].shape[1]})."})
            continue
        frames.append(frame)
        kept.append(str(file))
    if not frames:
        raise UserError(f"none of the {len(files)} files in {path} is a readable image; the "
                        f"first problem: {skipped[0]['error']}")
    return Footage([Sequence(path.name, torch.stack(frames), files=kept)], skipped)


def _colour(frames: torch.Tensor) -> torch.Tensor:
    """T x 3 x H x W: grey frames repeated into three channels."""
    return frames.expand(-1, 3, -1, -1).contiguous() if frames.shape[1] == 1 else frames
