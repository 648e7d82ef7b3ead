"""Tracking by detection: each frame's detections joined to the tracks of the frames before.

Every frame, each living track says where it expects its object (its last box, moved on by
its recent velocity: two crossing objects part along their own paths, so the expected boxes
tell them apart where the last boxes overlap), and the detections are assigned to tracks by
the Hungarian method (scipy's linear_sum_assignment) on the cost 1 - IoU, the assignment with
the largest total overlap rather than each track grabbing its best detection in turn. A pair
overlapping less than `iou_threshold` is no match.

Birth and death, as in SORT (Bewley et al. 2016): a detection no track claims starts a
tentative track, which gets an id only once it has been found `min_hits` frames in a row (a
one-frame false detection never becomes an object) and is forgotten at its first miss; a
track with an id lives through up to `max_missed` frames without a detection (an object
hidden behind another) and ends after that. Ids count up from 1 in the order tracks are
confirmed and are never reused. The whole video is linked before anything is shown, so a
confirmed track keeps the frames of its tentative start too.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import DEFAULTS
from .overlap import overlaps

NO_MATCH = 1e6        # the cost of a pair below the IoU threshold: chosen only when forced
VELOCITY_SPAN = 3     # frames a track's velocity is measured over (fewer: noisier)
HISTORY = 10          # observations in which a track's whole size is sought
WHOLE = 0.7           # a box of less than this fraction of that area is cut by an occluder


@dataclass(frozen=True)
class LinkSettings:
    iou_threshold: float = DEFAULTS["iou_threshold"]
    min_hits: int = DEFAULTS["min_hits"]
    max_missed: int = DEFAULTS["max_missed"]
    motion: bool = True  # expect an object where its velocity takes it, not where it was


@dataclass
class Track:
    """One object's detections, frame by frame; `id` is None while the track is tentative."""
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    masks: list[np.ndarray] | None = None
    id: int | None = None
    missed: int = 0

    def add(self, frame: int, found: dict, index: int) -> None:
        self.frames.append(frame)
        self.boxes.append(np.asarray(found["boxes"][index], dtype=np.float64))
        self.scores.append(float(found["scores"][index]))
        self.labels.append(int(found["labels"][index]))
        if found.get("masks") is not None:
            self.masks = (self.masks or []) + [np.asarray(found["masks"][index], dtype=bool)]
        self.missed = 0

    @property
    def label(self) -> int:
        """The class detected most often (a detector may call a half-hidden square a
        triangle for a frame or two)."""
        return Counter(self.labels).most_common(1)[0][0]

    def whole(self) -> list[int]:
        """The observations (indices) whose box is nearly as large as the object's largest in
        the last HISTORY: those no other object was cutting into. A box shrinking from one
        side as its object slides behind another says nothing about where it is going."""
        first = max(0, len(self.boxes) - HISTORY)
        areas = [float(np.prod(np.clip(b[2:] - b[:2], 0, None))) for b in self.boxes[first:]]
        return [first + i for i, a in enumerate(areas) if a >= WHOLE * max(areas)]

    def velocity(self, whole: list[int]) -> np.ndarray:
        """Pixels per frame (x, y) of the box centre over the last few whole observations."""
        if len(whole) < 2:
            return np.zeros(2)
        a, b = whole[-min(len(whole), VELOCITY_SPAN + 1)], whole[-1]
        return (_centre(self.boxes[b]) - _centre(self.boxes[a])) / (self.frames[b] - self.frames[a])

    def expected(self, frame: int, motion: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Where the object should be in `frame`: (box, mask or None), the last whole
        observation moved on by the velocity (or the last observation, without `motion`)."""
        if not motion:
            return self.boxes[-1], None if self.masks is None else self.masks[-1]
        whole = self.whole()
        shift = self.velocity(whole) * (frame - self.frames[whole[-1]])
        box = self.boxes[whole[-1]] + np.tile(shift, 2)
        mask = None if self.masks is None else _shifted(self.masks[whole[-1]], *np.rint(shift))
        return box, mask


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _shifted(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The mask moved by whole pixels; what leaves the frame is lost."""
    out = np.zeros_like(mask)
    height, width = mask.shape
    dx, dy = int(dx), int(dy)
    if abs(dx) < width and abs(dy) < height:
        out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


class Linker:
    """Call `step` once per frame, in order; `tracks()` gives the confirmed tracks."""

    def __init__(self, settings: LinkSettings = LinkSettings()):
        self.settings = settings
        self.alive: list[Track] = []
        self.ended: list[Track] = []
        self.next_id = 1

    def step(self, frame: int, found: dict) -> None:
        """`found`: this frame's detections, {"boxes": n x 4, "scores": n, "labels": n,
        optionally "masks": n x H x W}."""
        pairs = self._assign(frame, found)
        claimed = {d for _, d in pairs}
        for t, d in pairs:
            self.alive[t].add(frame, found, d)
        for t in set(range(len(self.alive))) - {t for t, _ in pairs}:
            self.alive[t].missed += 1
        for d in range(len(found["boxes"])):
            if d not in claimed:
                self.alive.append(Track())
                self.alive[-1].add(frame, found, d)
        self._confirm_and_end()

    def _assign(self, frame: int, found: dict) -> list[tuple[int, int]]:
        """(track index, detection index) pairs of the best total overlap."""
        if not self.alive or not len(found["boxes"]):
            return []
        expected = [track.expected(frame, self.settings.motion) for track in self.alive]
        masks = [mask for _, mask in expected]
        iou = overlaps({"boxes": np.stack([box for box, _ in expected]),
                        "masks": None if any(m is None for m in masks) else np.stack(masks)},
                       {"boxes": np.asarray(found["boxes"]), "masks": found.get("masks")})
        enough = iou >= self.settings.iou_threshold
        rows, columns = linear_sum_assignment(np.where(enough, 1 - iou, NO_MATCH))
        return [(int(t), int(d)) for t, d in zip(rows, columns) if enough[t, d]]

    def _confirm_and_end(self) -> None:
        keep = []
        for track in self.alive:
            if track.id is None and track.missed:
                continue  # a tentative track is forgotten at its first miss
            if track.missed > self.settings.max_missed:
                self.ended.append(track)
                continue
            if track.id is None and len(track.frames) >= self.settings.min_hits:
                track.id, self.next_id = self.next_id, self.next_id + 1
            keep.append(track)
        self.alive = keep

    def tracks(self) -> list[Track]:
        """Every track that got an id, ended or alive, by id."""
        return sorted((t for t in self.ended + self.alive if t.id is not None),
                      key=lambda t: t.id)


def link(detections: list[dict], settings: LinkSettings = LinkSettings()) -> list[Track]:
    """The confirmed tracks through frames 0, 1, ... given each frame's detections."""
    linker = Linker(settings)
    for frame, found in enumerate(detections):
        linker.step(frame, found)
    return linker.tracks()
