"""Arguments of `cnnlab track`: following objects over time with a detection run.

Kept out of main.py so it stays wiring; the defaults come from cnnlab.track.DEFAULTS, which
imports no torch.
"""
from __future__ import annotations

import argparse


from ..track import DEFAULTS, GENERATED




def add_track_args(parser: argparse.ArgumentParser) -> None:
    d, add = DEFAULTS, parser.add_argument
    parser.description = (
        "The run's detector finds the objects in every frame; the detections are linked "
        "across frames by IoU (mask IoU for an instance run) with an optimal assignment, "
        "and every object keeps one id. Writes a frame sheet (or a video) with the ids "
        "drawn and FILE.tracks.json beside it. On the generated clips, whose identities are "
        "known, also MOTA, IDF1 and the identity switches.")
    add("run", metavar="RUN", help="run folder written by cnnlab train --task detect or instance")
    add("source", metavar="VIDEO|FRAMES_DIR",
        help=f"a video file, a folder of frame images (in name order), or {GENERATED}: "
             "generated clips of shapes crossing each other, with ground truth")
    add("--out", metavar="FILE", help="the frame sheet (.png) or the video with the tracks "
        "drawn (.mp4); the tracks go beside it as FILE.tracks.json (default: "
        "RUN/tracks/<name>.png)")
    add("--clips", type=int, default=1, metavar="N",
        help=f"{GENERATED}: track N clips and pool the metrics; the sheet shows the first "
             "(default: 1)")
    add("--seed", type=int, default=0, help=f"{GENERATED}: which clips (default: 0)")
    add("--score-threshold", type=float, default=d["score_threshold"], metavar="T",
        help=f"detections scored below T are not tracked (default: {d['score_threshold']})")
    add("--iou-threshold", type=float, default=d["iou_threshold"], metavar="T",
        help="least overlap between a track's expected place and a detection to link them "
             f"(default: {d['iou_threshold']})")
    add("--min-hits", type=int, default=d["min_hits"], metavar="N",
        help=f"a new track gets an id once found N frames in a row (default: {d['min_hits']})")
    add("--max-missed", type=int, default=d["max_missed"], metavar="N",
        help=f"a track ends after N frames without a detection (default: {d['max_missed']})")
    add("--match-iou", type=float, default=d["match_iou"], metavar="T",
        help=f"metrics: a track's box matches an object's from IoU T (default: {d['match_iou']})")
    add("--device", default="auto")
