"""How well tracks follow known objects: CLEAR-MOT (Bernardin & Stiefelhagen 2008) and the
identity measures (Ristani et al. 2016), as py-motmetrics and the MOTChallenge compute them.

Why not py-motmetrics itself: its 1.4.0, the latest, calls numpy's `asfarray`, which numpy 2
removed, and it needs pandas, which nothing else in cnnlab does. This is the same
definition on scipy's linear_sum_assignment, checked against hand-worked cases
(tests/test_track.py) and, where py-motmetrics is installed, against its accumulator.

CLEAR-MOT, frame by frame: an object and a track that were matched before stay matched while
they still overlap at least `match_iou`; the rest are matched by the assignment of least
total distance (1 - IoU) among pairs overlapping that much. An object matched to a different
track than at its last match is an identity switch; an object left unmatched is a miss, a
track left unmatched a false positive.
    MOTA = 1 - (misses + false positives + switches) / objects (summed over frames)
IDF1: each object's whole trajectory is paired with at most one track's, the pairing that
maximises the frames where the two overlap at least `match_iou` (IDTP); then
    IDF1 = 2 IDTP / (object boxes + track boxes)
the F1 score of "this box carries the right identity", whatever happened frame to frame.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import DEFAULTS
from .overlap import overlaps

NO_MATCH = 1e6


@dataclass
class Counts:
    """What one or more sequences add up to; `+` pools sequences as MOTChallenge does."""
    objects: int = 0          # ground-truth boxes, summed over frames
    predictions: int = 0      # track boxes, summed over frames
    matches: int = 0
    misses: int = 0
    false_positives: int = 0
    id_switches: int = 0
    idtp: int = 0
    iou_sum: float = 0.0      # over the matches: MOTP as a mean IoU
    sequences: int = 0
    tracked_ids: int = 0      # distinct objects and tracks seen
    track_ids: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def summary(self) -> dict:
        ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
        idfp, idfn = self.predictions - self.idtp, self.objects - self.idtp
        return {"mota": 1 - ratio(self.misses + self.false_positives + self.id_switches,
                                  self.objects),
                "idf1": ratio(2 * self.idtp, self.objects + self.predictions),
                "id_switches": self.id_switches, "misses": self.misses,
                "false_positives": self.false_positives, "matches": self.matches,
                "objects": self.objects, "predictions": self.predictions,
                "motp_iou": ratio(self.iou_sum, self.matches),
                "idp": ratio(self.idtp, self.idtp + idfp), "idr": ratio(self.idtp, self.idtp + idfn),
                "idtp": self.idtp, "ground_truth_ids": self.tracked_ids,
                "track_ids": self.track_ids}


@dataclass
class _Matching:
    """CLEAR-MOT's state while a sequence is walked: the last track each object matched."""
    last: dict = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    together: dict = field(default_factory=lambda: defaultdict(int))  # (object, track): frames


def clear_mot(truth: list[dict], tracked: list[dict], match_iou: float = DEFAULTS["match_iou"]
              ) -> Counts:
    """The counts for one sequence. `truth` and `tracked` hold one dict per frame:
    {"ids": k, "boxes": k x 4, optionally "masks": k x H x W} (mask IoU where both sides
    have masks)."""
    if len(truth) != len(tracked):
        raise ValueError(f"{len(truth)} frames of ground truth but {len(tracked)} tracked")
    state = _Matching()
    for objects, tracks in zip(truth, tracked):
        _frame(state, _plain(objects), _plain(tracks), match_iou)
    counts = state.counts
    counts.idtp = identity_true_positives(state.together)
    counts.sequences = 1
    counts.tracked_ids = len({i for frame in truth for i in _plain(frame)["ids"]})
    counts.track_ids = len({i for frame in tracked for i in _plain(frame)["ids"]})
    return counts


def _plain(frame: dict) -> dict:
    """ids as Python ints and boxes and masks as numpy arrays, whatever they came as."""
    as_array = lambda v: None if v is None else np.asarray(v)  # noqa: E731
    return {"ids": [int(i) for i in frame["ids"]], "boxes": as_array(frame["boxes"]),
            "masks": as_array(frame.get("masks"))}


def _frame(state: _Matching, objects: dict, tracks: dict, match_iou: float) -> None:
    iou = overlaps(objects, tracks) if objects["ids"] and tracks["ids"] else \
        np.zeros((len(objects["ids"]), len(tracks["ids"])))
    close = iou >= match_iou
    for o, t in zip(*np.nonzero(close)):  # frames together, for IDF1
        state.together[objects["ids"][o], tracks["ids"][t]] += 1
    pairs = _kept(state, objects["ids"], tracks["ids"], close)
    free_o = [o for o in range(len(objects["ids"])) if o not in {p[0] for p in pairs}]
    free_t = [t for t in range(len(tracks["ids"])) if t not in {p[1] for p in pairs}]
    if free_o and free_t:
        sub = close[np.ix_(free_o, free_t)]
        rows, cols = linear_sum_assignment(np.where(sub, 1 - iou[np.ix_(free_o, free_t)],
                                                    NO_MATCH))
        for r, c in zip(rows, cols):
            if sub[r, c]:
                o, t = free_o[r], free_t[c]
                previous = state.last.get(objects["ids"][o])
                state.counts.id_switches += previous is not None and previous != tracks["ids"][t]
                pairs.append((o, t))
    counts = state.counts
    for o, t in pairs:
        state.last[objects["ids"][o]] = tracks["ids"][t]
        counts.iou_sum += float(iou[o, t])
    counts.matches += len(pairs)
    counts.misses += len(objects["ids"]) - len(pairs)
    counts.false_positives += len(tracks["ids"]) - len(pairs)
    counts.objects += len(objects["ids"])
    counts.predictions += len(tracks["ids"])


def _kept(state: _Matching, object_ids: list, track_ids: list, close: np.ndarray) -> list:
    """The matches carried over from before: the object's last track is here and close."""
    where = {track: t for t, track in enumerate(track_ids)}
    kept, used = [], set()
    for o, identity in enumerate(object_ids):
        t = where.get(state.last.get(identity))
        # after a switch two objects may name the same last track: the first keeps it
        if t is not None and t not in used and close[o, t]:
            kept.append((o, t))
            used.add(t)
    return kept


def identity_true_positives(together: dict) -> int:
    """IDTP: the most frames of agreement any one-to-one pairing of objects with tracks gets."""
    if not together:
        return 0
    objects = sorted({o for o, _ in together})
    tracks = sorted({t for _, t in together})
    agree = np.zeros((len(objects), len(tracks)))
    for (o, t), frames in together.items():
        agree[objects.index(o), tracks.index(t)] = frames
    rows, cols = linear_sum_assignment(agree, maximize=True)
    return int(agree[rows, cols].sum())
