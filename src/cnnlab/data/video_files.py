"""The user's video files: decoding them, and a folder of them as a data set (`videos:PATH`).

torchvision 0.29 no longer reads video (torchvision.io.read_video is gone), so frames come
from PyAV, the Python binding of FFmpeg that torchvision itself used to call; it is imported
only when a video is opened (`pip install 'cnnlab[video]'`).

A clip is what a video model sees: a fixed number of frames, spread evenly over the whole
video (the first eight frames of a ten-second video are a third of a second that says little
about what happens in it), each resized to one common size so the clips stack into one
uint8 N x T x C x H x W tensor, the layout data/moving_shapes.py uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from ..logs import LOGGER
from .sources import LabelledImages

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
CLIP_FRAMES, CLIP_SIZE = 8, 112  # moving-shapes' clip length; C3D's and the video ResNets' size
MANY = 500  # videos: from here on, reading them is announced (it takes a noticeable while)


def require_pyav():
    """The `av` module (PyAV); UserError saying how to install it when it is missing."""
    try:
        import av
    except ImportError:
        raise UserError("reading video files needs PyAV; install it with "
                        "pip install 'cnnlab[video]' (or pip install av).") from None
    return av


def _open(path: Path):
    """The opened container and its first video stream; UserError for anything unusable."""
    av = require_pyav()
    if not path.is_file():
        raise UserError(f"video file {path} does not exist.")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not a readable video file ({_reason(exc)}).") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream.")
    return container, container.streams.video[0]


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without the trailing file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '")[0].rstrip(".")


def _decoded(path: Path):
    """(the stream's frame count from its header, 0 when it has none; every decoded frame,
    not yet converted: converting is what costs, so callers convert only what they keep)."""
    av = require_pyav()
    container, stream = _open(path)
    stream.thread_type = "AUTO"

    def frames():
        try:
            with container:
                yield from container.decode(stream)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise UserError(f"{path} is not a readable video file ({_reason(exc)}).") from None
    return stream.frames, frames()


def _rgb(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """One frame as H x W x 3 uint8, resized by FFmpeg to `size` (H, W) when given."""
    if size is not None:
        return frame.reformat(width=size[1], height=size[0], format="rgb24").to_ndarray()
    return frame.to_ndarray(format="rgb24")


def read_frames(path: str | Path, max_frames: int | None = None) -> torch.Tensor:
    """The video's frames in order, uint8 T x C x H x W (RGB, the file's own size); only the
    first `max_frames` are decoded when given. UserError for an unreadable or non-video file."""
    path = Path(path)
    kept = []
    for frame in _decoded(path)[1]:
        if max_frames is not None and len(kept) >= max_frames:
            break
        kept.append(_rgb(frame))
    if not kept:
        raise UserError(f"{path} has a video stream but no frame could be decoded.")
    return torch.from_numpy(np.stack(kept)).permute(0, 3, 1, 2).contiguous()


def read_clip(path: str | Path, frames: int = CLIP_FRAMES,
              size: tuple[int, int] = (CLIP_SIZE, CLIP_SIZE)) -> torch.Tensor:
    """`frames` frames spread evenly over the whole video, each resized to `size` (H, W):
    uint8 T x C x H x W. A video shorter than `frames` repeats frames rather than fail, the
    way a slow-motion replay would."""
    path = Path(path)
    total, decoded = _decoded(path)
    if total <= 0:  # no count in the header: count by decoding once (cheap without converting)
        total = sum(1 for _ in decoded)
        decoded = _decoded(path)[1]
    if total <= 0:
        raise UserError(f"{path} has a video stream but no frame could be decoded.")
    clip, found = _picked_frames(decoded, _even_picks(total, frames), size)
    if clip is None:  # the header promised more frames than the file holds (a cut file)
        if found == 0:
            raise UserError(f"{path} has a video stream but no frame could be decoded.")
        clip, _ = _picked_frames(_decoded(path)[1], _even_picks(found, frames), size)
    return torch.from_numpy(np.stack(clip)).permute(0, 3, 1, 2).contiguous()


def _picked_frames(decoded, picks: np.ndarray, size):
    """(the frames at `picks`, converted, or None if the video ended first; how many frames
    were decoded)."""
    wanted, seen, count = set(picks.tolist()), {}, 0
    for count, frame in enumerate(decoded, start=1):
        if count - 1 in wanted:
            seen[count - 1] = _rgb(frame, size)
        if count - 1 >= picks[-1]:
            break
    if len(seen) < len(wanted):
        return None, count
    return [seen[i] for i in picks.tolist()], count


def _even_picks(available: int, frames: int) -> np.ndarray:
    """The middle of each of `frames` equal stretches of `available` frames."""
    return ((np.arange(frames) + 0.5) * available / frames).astype(int)


def read_frame_folder(folder: str | Path, frames: int = CLIP_FRAMES,
                      size: tuple[int, int] = (CLIP_SIZE, CLIP_SIZE)) -> torch.Tensor:
    """A folder of frame images (in the order of their names, as video tools number them:
    frame_0001.png ...) as a clip like read_clip's; UserError naming the first bad frame."""
    from torchvision.transforms.v2 import functional as F

    from .images import decode_image

    folder = Path(folder)
    names = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not names:
        raise UserError(f"folder {folder} holds no frame images.")
    if any(is_video(name) for name in names):
        raise UserError(f"folder {folder} holds video files; give each video itself, or a "
                        "folder of one video's frames.")
    picked = [names[i] for i in _even_picks(len(names), frames)]
    clip = [F.resize(decode_image(path), list(size), antialias=True) for path in picked]
    if len({frame.shape[0] for frame in clip}) > 1:  # grey and colour frames mixed
        clip = [frame.expand(3, -1, -1) for frame in clip]
    return torch.stack(clip)


def read_any_clip(path: str | Path, frames: int = CLIP_FRAMES,
                  size: tuple[int, int] = (CLIP_SIZE, CLIP_SIZE)) -> torch.Tensor:
    """A video file, or a folder of its frames, as a clip (uint8 T x C x H x W)."""
    path = Path(path)
    return read_frame_folder(path, frames, size) if path.is_dir() else read_clip(path, frames, size)


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoClips(LabelledImages):
    """Clips (uint8 N x T x C x H x W) and labels, plus the files left out and why."""

    files: list[Path] = field(default_factory=list)  # the file of every clip, in order
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


class _ClipFiles(Dataset):
    """(clip or None, reason or None) per file, so DataLoader workers decode in parallel."""

    def __init__(self, files: list[Path], frames: int, size: tuple[int, int]):
        self.files, self.frames, self.size = files, frames, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return read_clip(self.files[index], self.frames, self.size), None
        except UserError as exc:
            return None, str(exc)


def _as_list(batch):
    return batch


def load_clips(files: list[Path], labels: list[int], classes: list[str], *,
               frames: int = CLIP_FRAMES, size: tuple[int, int] = (CLIP_SIZE, CLIP_SIZE),
               problems: list[tuple[str, str]] | None = None,
               workers: int | None = None) -> VideoClips:
    """Every file read as a clip, in worker processes; unreadable ones left out and listed in
    `problems` with their reasons."""
    from .decode import default_workers

    workers = default_workers() if workers is None else workers
    if len(files) >= MANY:  # UCF101's 13,320 take a while: say what is happening
        LOGGER.info("reading %d videos as clips of %d frames of %dx%d (PyAV, %d worker(s))",
                    len(files), frames, *size, workers)
    loader = DataLoader(_ClipFiles(files, frames, size), batch_size=4, collate_fn=_as_list,
                        num_workers=min(workers, max(0, len(files) // 8)))
    # filled in place: UCF101 at 112x112 is gigabytes, too many to hold twice for a stack
    clips = torch.empty((len(files), frames, 3, *size), dtype=torch.uint8)
    kept, good = [], []
    problems = list(problems or [])
    results = (item for batch in loader for item in batch)
    for path, label, (clip, reason) in zip(files, labels, results):
        if reason is not None:
            problems.append((str(path), reason))
            continue
        clips[len(good)] = clip
        kept.append(label)
        good.append(path)
    if not good:
        first = problems[0][1] if problems else "no video files were found"
        raise UserError(f"none of the {len(files)} video files could be read; the first "
                        f"problem: {first}")
    return VideoClips(clips[:len(good)], torch.tensor(kept, dtype=torch.long), classes,
                      good, problems)


def clip_options(argument: str) -> tuple[str, int, int]:
    """'PATH' or 'PATH?frames=16&size=64' -> (PATH, frames, size)."""
    path, _, query = argument.partition("?")
    options = {"frames": CLIP_FRAMES, "size": CLIP_SIZE}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key not in options or not value.isdigit() or int(value) < 1:
            raise UserError(f"'{pair}' in --dataset videos:{argument} is not an option; write "
                            "videos:PATH?frames=N&size=N with positive whole numbers.")
        options[key] = int(value)
    return path, options["frames"], options["size"]


def video_folder(argument: str | Path) -> VideoClips:
    """PATH/<class>/**/<video>.mp4|.avi|.mkv|.mov|.webm: class names are the subfolder names,
    sorted; files with other suffixes are listed as left out, not silently ignored. Each video
    becomes `frames` frames of `size` squared (PATH?frames=N&size=N; 8 and 112 by default)."""
    path, frames, size = clip_options(str(argument))
    require_pyav()  # one sentence now, rather than every file left out for the same reason
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"folder {root} has no class subfolders; put each class's videos in "
                        f"{root}/<class name>/.")
    files, labels, problems = [], [], []
    for label, name in enumerate(classes):
        for file in sorted(p for p in (root / name).rglob("*")
                           if p.is_file() and not p.name.startswith(".")):
            if is_video(file):
                files.append(file)
                labels.append(label)
            else:
                problems.append((str(file), f"not a video file (expected one of "
                                            f"{', '.join(VIDEO_SUFFIXES)})"))
    if not files:
        raise UserError(f"folder {root} has class subfolders but no video files "
                        f"({', '.join(VIDEO_SUFFIXES)}) in them.")
    return load_clips(files, labels, classes, frames=frames, size=(size, size),
                      problems=problems)
