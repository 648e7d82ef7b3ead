"""`cnnlab track RUN VIDEO|FRAMES_DIR|crossing-shapes`: the run's detector on every frame,
the detections linked into tracks, the tracks drawn and listed, and, where the objects'
identities are known (the generated clips), MOTA, IDF1 and the identity switches."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..infer.loaded import load_for_inference
from ..runs import folder as runs
from . import DEFAULTS
from .frames import Footage, Sequence, read_footage
from .linking import LinkSettings, Track, link
from .metrics import Counts, clear_mot
from .outputs import check_out, default_out, write_tracks, write_video
from .sheet import drawn_frame, frame_tracks, save_sheet, sheet_figure

TASKS = ("detect", "instance")


def _check(score_threshold, iou_threshold, match_iou, min_hits, max_missed, clips) -> None:
    for name, value in (("--score-threshold", score_threshold),
                        ("--iou-threshold", iou_threshold), ("--match-iou", match_iou)):
        if not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise UserError(f"{name} must be a number from 0 to 1, not {value!r}.")
    for name, value, least in (("--min-hits", min_hits, 1), ("--max-missed", max_missed, 0),
                               ("--clips", clips, 1)):
        if not isinstance(value, int) or value < least:
            raise UserError(f"{name} must be a whole number of at least {least}, not {value!r}.")


def track(run: str, source: str, out: str | None = None, clips: int = 1, seed: int = 0,
          score_threshold: float = DEFAULTS["score_threshold"],
          iou_threshold: float = DEFAULTS["iou_threshold"], min_hits: int = DEFAULTS["min_hits"],
          max_missed: int = DEFAULTS["max_missed"], match_iou: float = DEFAULTS["match_iou"],
          device: str = "auto", quiet: bool = False) -> dict:
    """Track the objects of `source` (a folder of frames, a video file or crossing-shapes)
    with the detector of `run`; returns the tracks, the numbers and the files written."""
    started = time.perf_counter()
    _check(score_threshold, iou_threshold, match_iou, min_hits, max_missed, clips)
    task = runs.read_spec(run).config.task
    if task not in TASKS:
        raise UserError(f"{run} trained --task {task}; track needs a run of --task detect or "
                        "--task instance.")
    if out is None:
        out = default_out(run, source)
        out.parent.mkdir(exist_ok=True)
    picture, tracks_json = check_out(Path(out))
    footage = read_footage(source, clips, seed)
    settings = LinkSettings(iou_threshold, min_hits, max_missed)
    loaded = load_for_inference(run, device, batch_size=1)
    found = [_detect(loaded, s.frames, score_threshold, quiet) for s in footage.sequences]
    linked = [link(f, settings) for f in found]
    classes = loaded.run.spec.classes
    result = _result(run, task, source, footage, found, linked, settings, score_threshold,
                     classes)
    if any(s.truth is not None for s in footage.sequences):
        result.update(_scores(footage.sequences, linked, match_iou).summary(),
                      match_iou=match_iou)
    _picture(picture, footage.sequences[0], linked[0], classes, result)
    result.update(picture=str(picture), tracks_file=str(tracks_json),
                  seconds=round(time.perf_counter() - started, 2))
    write_tracks(tracks_json, result)
    return result


def _detect(loaded, frames: torch.Tensor, score_threshold: float, quiet: bool) -> list[dict]:
    """Per frame, the detections scored at least `score_threshold`, as numpy arrays."""
    from tqdm.auto import tqdm
    from ..tasks.detect_report import detections
    spec, found = loaded.run.spec, []
    bar = tqdm(frames, unit="frame", file=sys.stderr, leave=False,
               disable=quiet or not (sys.stdout.isatty() and sys.stderr.isatty()))
    for frame in bar:
        answer = detections(loaded.model, frame, spec.preprocess, loaded.device, loaded.precision)
        keep = answer["scores"] >= score_threshold
        found.append({k: v[keep].numpy() for k, v in answer.items()})
    bar.close()
    return found


def _track_record(sequence: int, track: Track, classes: list[str]) -> dict:
    return {"sequence": sequence, "id": track.id,
            "class": classes[track.label] if track.label < len(classes) else str(track.label),
            "frames": track.frames,
            "boxes": [[round(float(v), 2) for v in box] for box in track.boxes],
            "scores": [round(s, 4) for s in track.scores]}


def _result(run, task, source, footage: Footage, found, linked, settings: LinkSettings,
            score_threshold: float, classes: list[str]) -> dict:
    return {"run": str(run), "task": task, "source": source,
            "overlap": "mask IoU" if task == "instance" else "box IoU",
            "sequences": [{"name": s.name, "frames": len(s.frames),
                           "size": list(s.frames.shape[-2:]), "tracks": len(tracks)}
                          for s, tracks in zip(footage.sequences, linked)],
            "detections": sum(len(f["boxes"]) for frames in found for f in frames),
            "settings": {"score_threshold": score_threshold,
                         "iou_threshold": settings.iou_threshold,
                         "min_hits": settings.min_hits, "max_missed": settings.max_missed},
            "tracks": [_track_record(i, t, classes) for i, tracks in enumerate(linked)
                       for t in tracks],
            "skipped": footage.skipped}


def tracked_frames(tracks: list[Track], frames: int) -> list[dict]:
    """The tracks as the metrics take them: per frame, the ids and boxes present."""
    per_frame = frame_tracks(tracks, frames)
    return [{"ids": [o[0] for o in objects],
             "boxes": np.array([o[2] for o in objects], dtype=np.float64).reshape(-1, 4)}
            for objects in per_frame]


def _scores(sequences: list[Sequence], linked: list[list[Track]], match_iou: float) -> Counts:
    """CLEAR-MOT and identity counts pooled over the sequences (boxes, as MOTChallenge)."""
    total = Counts()
    for sequence, tracks in zip(sequences, linked):
        truth = [{"ids": t["ids"], "boxes": t["boxes"]} for t in sequence.truth]
        total = total + clear_mot(truth, tracked_frames(tracks, len(sequence.frames)), match_iou)
    return total


def _picture(path: Path, sequence: Sequence, tracks: list[Track], classes, result) -> None:
    if path.suffix.lower() == ".mp4":
        per_frame = frame_tracks(tracks, len(sequence.frames))
        write_video(path, torch.stack([drawn_frame(f, objects)
                                       for f, objects in zip(sequence.frames, per_frame)]))
        return
    title = (f"{sequence.name}: {len(tracks)} tracks" + (
        f", MOTA {result['mota']:.1%}, IDF1 {result['idf1']:.1%}, "
        f"{result['id_switches']} identity switches" if sequence.truth is not None
        and len(result["sequences"]) == 1 else ""))
    save_sheet(sheet_figure(sequence.frames, tracks, classes, title), path)


def format_track(result: dict) -> str:
    shown = result["sequences"]
    lines = [f"{result['source']}: {sum(s['frames'] for s in shown)} frames in {len(shown)} "
             f"{'clips' if len(shown) > 1 else 'video'}, {len(result['tracks'])} tracks from "
             f"{result['detections']} detections ({result['overlap']}, {result['seconds']:.1f} s)"]
    if "mota" in result:
        lines.append(f"MOTA {result['mota']:.2%}, IDF1 {result['idf1']:.2%}, "
                     f"{result['id_switches']} identity switches, {result['misses']} misses, "
                     f"{result['false_positives']} false positives over {result['objects']} "
                     f"objects (match at IoU {result['match_iou']})")
    for item in result["skipped"]:
        lines.append(f"skipped {item['file']}: {item['error']}")
    lines.append(f"{'video' if result['picture'].endswith('.mp4') else 'frame sheet'}: "
                 f"{result['picture']}; tracks: {result['tracks_file']}")
    return "\n".join(lines)
