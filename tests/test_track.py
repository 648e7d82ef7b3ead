"""Following objects over time as a user meets it: the metrics give the hand-worked answers,
the linker keeps one id per object through a crossing, and `cnnlab track` with a detection
run writes a frame sheet, the tracks' JSON and, on generated clips, MOTA and IDF1."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data.crossing_clips import generate_crossing_clips
from cnnlab.track.command import tracked_frames
from cnnlab.track.linking import LinkSettings, link
from cnnlab.track.metrics import clear_mot
from cnnlab.track.overlap import box_iou

A, B, FAR = [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]


def _frame(ids, boxes):
    return {"ids": ids, "boxes": np.array(boxes, dtype=float).reshape(-1, 4)}


def _found(boxes, masks=None):
    boxes = np.array(boxes, dtype=float).reshape(-1, 4)
    found = {"boxes": boxes, "scores": np.ones(len(boxes)), "labels": np.ones(len(boxes), int)}
    return found if masks is None else {**found, "masks": np.array(masks, dtype=bool)}


def _truth_as_detections(truth: list[dict]) -> list[dict]:
    """A perfect detector: every visible object's box, shuffled, without its id."""
    rng = np.random.default_rng(0)
    out = []
    for frame in truth:
        order = rng.permutation(len(frame["ids"]))
        out.append(_found(frame["boxes"].numpy()[order]))
    return out


# --- the metrics, on cases worked by hand -------------------------------------------------

def test_tracks_equal_to_the_truth_score_mota_1_idf1_1_and_no_switches():
    truth = [_frame([1, 2], [A, B]) for _ in range(4)]
    tracks = [_frame([7, 9], [A, B]) for _ in range(4)]  # a tracker's ids are its own
    scores = clear_mot(truth, tracks).summary()
    assert (scores["mota"], scores["idf1"], scores["id_switches"]) == (1.0, 1.0, 0)
    assert scores["motp_iou"] == 1.0 and scores["misses"] == scores["false_positives"] == 0


def test_two_objects_whose_ids_swap_halfway_count_two_switches():
    truth = [_frame([1, 2], [A, B]) for _ in range(4)]
    tracks = [_frame([7, 9], [A, B])] * 2 + [_frame([9, 7], [A, B])] * 2
    scores = clear_mot(truth, tracks).summary()
    assert scores["id_switches"] == 2
    assert scores["mota"] == pytest.approx(1 - 2 / 8)
    # each object's trajectory agrees with either track for 2 of its 4 frames: IDTP 4 of 8+8
    assert scores["idf1"] == pytest.approx(2 * 4 / 16)


def test_dropped_detections_are_misses_and_an_extra_track_a_false_positive():
    truth = [_frame([1], [A]) for _ in range(4)]
    tracks = [_frame([5], [A]), _frame([], []), _frame([5, 6], [FAR, FAR]), _frame([5], [A])]
    scores = clear_mot(truth, tracks).summary()
    assert (scores["misses"], scores["false_positives"], scores["id_switches"]) == (2, 2, 0)
    assert scores["mota"] == pytest.approx(1 - 4 / 4)
    assert scores["idf1"] == pytest.approx(2 * 2 / (4 + 4))


def test_a_box_overlapping_less_than_match_iou_is_no_match():
    shifted = [6, 0, 16, 10]  # IoU with A: 4*10 / (200 - 40) = 0.25
    scores = clear_mot([_frame([1], [A])], [_frame([3], [shifted])]).summary()
    assert (scores["misses"], scores["false_positives"]) == (1, 1)
    assert clear_mot([_frame([1], [A])], [_frame([3], [shifted])], match_iou=0.2
                     ).summary()["matches"] == 1


def test_the_metrics_agree_with_py_motmetrics_where_it_is_installed():
    mm = pytest.importorskip("motmetrics")
    clips = generate_crossing_clips(3, seed=5)
    for truth in clips.truth:
        # a noisy tracker: boxes jittered, some dropped, ids changed now and then
        rng = np.random.default_rng(1)
        tracks, accumulator = [], mm.MOTAccumulator(auto_id=True)
        for frame in truth:
            keep = rng.random(len(frame["ids"])) > 0.15
            ids = [int(i) + (10 if rng.random() < 0.1 else 0) for i in frame["ids"][keep]]
            boxes = frame["boxes"].numpy()[keep] + rng.normal(0, 2, (int(keep.sum()), 4))
            tracks.append(_frame(ids, boxes))
            iou = box_iou(frame["boxes"].numpy(), boxes)
            accumulator.update([int(i) for i in frame["ids"]], ids,
                               np.where(iou >= 0.5, 1 - iou, np.nan))
        theirs = mm.metrics.create().compute(accumulator, metrics=["mota", "idf1",
                                                                   "num_switches"])
        ours = clear_mot(truth, tracks).summary()
        assert ours["mota"] == pytest.approx(float(theirs["mota"].iloc[0]))
        assert ours["idf1"] == pytest.approx(float(theirs["idf1"].iloc[0]))
        assert ours["id_switches"] == int(theirs["num_switches"].iloc[0])


# --- the linker --------------------------------------------------------------------------

def _crossing(frames=12, speed=4):
    """Two boxes on one row moving towards each other, passing through the same place."""
    return [_found([[x, 20, x + 10, 30], [60 - x, 21, 70 - x, 31]])
            for x in range(0, frames * speed, speed)]


def test_two_boxes_crossing_keep_their_ids_because_each_track_expects_its_own_motion():
    detections = _crossing()
    tracks = link(detections)
    assert [t.id for t in tracks] == [1, 2]
    assert all(t.frames == list(range(12)) for t in tracks)
    moving_right = tracks[0] if tracks[0].boxes[0][0] == 0 else tracks[1]
    assert [b[0] for b in moving_right.boxes] == list(range(0, 48, 4))  # never turns back
    # looking only at the last boxes, both tracks are equally close at the crossing and the
    # cheaper total cost sends each one back the way it came
    still = link(detections, LinkSettings(motion=False))
    assert any(np.diff([b[0] for b in t.boxes]).min() < 0 < np.diff([b[0] for b in t.boxes]).max()
               for t in still)


def test_a_track_is_born_after_min_hits_and_a_one_frame_flicker_never_is():
    detections = [_found([A]), _found([A, FAR]), _found([A]), _found([A])]
    tracks = link(detections, LinkSettings(min_hits=2))
    assert len(tracks) == 1 and tracks[0].frames == [0, 1, 2, 3]
    assert link(detections[:1], LinkSettings(min_hits=2)) == []


def test_a_track_lives_through_max_missed_frames_and_ends_after_that():
    hidden = lambda gap: [_found([A])] * 2 + [_found([])] * gap + [_found([A])] * 2  # noqa
    kept = link(hidden(3), LinkSettings(max_missed=3))
    assert [t.id for t in kept] == [1] and kept[0].frames == [0, 1, 5, 6]
    ended = link(hidden(4), LinkSettings(max_missed=3))
    assert [(t.id, t.frames) for t in ended] == [(1, [0, 1]), (2, [6, 7])]


def test_instance_masks_tell_apart_two_objects_whose_boxes_are_the_same():
    upper = np.triu(np.ones((20, 20), bool))     # two triangles filling one square box
    lower = np.tril(np.ones((20, 20), bool), -1)
    box = [0, 0, 20, 20]
    # the detector lists them in a different order every frame
    frames = [_found([box, box], [upper, lower]), _found([box, box], [lower, upper]),
              _found([box, box], [upper, lower]), _found([box, box], [lower, upper])]
    tracks = link(frames)
    assert len(tracks) == 2
    for track in tracks:
        assert all((m == track.masks[0]).all() for m in track.masks)


def test_perfect_detections_of_crossing_clips_are_tracked_almost_perfectly():
    clips = generate_crossing_clips(10, seed=3)
    total = None
    for clip, truth in zip(clips.clips, clips.truth):
        tracks = link(_truth_as_detections(truth))
        counts = clear_mot(truth, tracked_frames(tracks, len(clip)))
        total = counts if total is None else total + counts
    scores = total.summary()
    assert scores["mota"] >= 0.95 and scores["idf1"] >= 0.95, scores
    assert scores["id_switches"] <= 1


def test_crossing_clips_are_reproducible_and_their_objects_really_overlap():
    first, again = generate_crossing_clips(4, seed=1), generate_crossing_clips(4, seed=1)
    assert first.clips.equal(again.clips)
    assert first.clips.shape == (4, 20, 3, 64, 64)
    overlapping = 0
    for truth in first.truth:
        for frame in truth:
            boxes = frame["boxes"].numpy()
            iou = box_iou(boxes, boxes) - np.eye(len(boxes))
            overlapping += bool((iou > 0).any())
            masks = frame["masks"].numpy().astype(bool)
            assert not (masks.sum(0) > 1).any()  # visible masks never share a pixel
    assert overlapping > 0


# --- the command -------------------------------------------------------------------------

def _fake_run(path, task):
    """A run folder with only its config: enough for the checks made before any model loads."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({
        "train": {"task": task}, "classes": ["background", "circle"], "model": {"num_classes": 2, "in_channels": 3},
        "preprocess": {"channels": 3, "size": [64, 64], "mean": [0, 0, 0], "std": [1, 1, 1]}}))
    return path


def test_a_run_that_is_not_a_detector_and_an_empty_folder_are_one_sentence(tmp_path, capsys):
    classify = _fake_run(tmp_path / "classify", "classify")
    assert main(["track", str(classify), "crossing-shapes", "--out",
                 str(tmp_path / "s.png")]) == 2
    assert "needs a run of --task detect or --task instance" in capsys.readouterr().err
    detect = _fake_run(tmp_path / "detect", "detect")
    (tmp_path / "empty").mkdir()
    assert main(["track", str(detect), str(tmp_path / "empty")]) == 2
    assert "holds no frame images" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_text("not a picture")
    assert main(["track", str(detect), str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err
    assert "none of the 1 files" in err and "Traceback" not in err


def test_an_existing_file_cnnlab_did_not_write_is_never_replaced(tmp_path, capsys):
    detect = _fake_run(tmp_path / "detect", "detect")
    theirs = tmp_path / "holiday.png"
    Image.new("RGB", (4, 4)).save(theirs)
    assert main(["track", str(detect), "crossing-shapes", "--out", str(theirs)]) == 2
    assert "was not written by cnnlab track" in capsys.readouterr().err
    assert main(["track", str(detect), "crossing-shapes", "--out",
                 str(tmp_path / "x.gif")]) == 2
    assert "must end in .png" in capsys.readouterr().err


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory):
    """The default detect recipe (Faster R-CNN, ResNet-18), trained for two small steps."""
    run = tmp_path_factory.mktemp("track") / "det"
    assert main(["train", "--task", "detect", "--epochs", "1", "--limit-batches", "2",
                 "--batch-size", "4", "--out", str(run), "--quiet"]) == 0
    return run


@pytest.mark.slow
def test_track_a_generated_clip_writes_the_sheet_the_tracks_and_the_metrics(
        detect_run, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["track", str(detect_run), "crossing-shapes", "--out", str(sheet),
                 "--score-threshold", "0.05", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"mota", "idf1", "id_switches", "misses", "false_positives", "tracks"} <= result.keys()
    assert result["objects"] > 0 and result["sequences"][0]["frames"] == 20
    assert Image.open(sheet).size[0] > 500
    saved = json.loads((tmp_path / "sheet.tracks.json").read_text())
    assert saved["tracks"] == result["tracks"]
    for track in result["tracks"]:
        assert len(track["frames"]) == len(track["boxes"]) == len(track["scores"])
    # a second run may replace what the first wrote
    assert main(["track", str(detect_run), "crossing-shapes", "--out", str(sheet)]) == 0
    assert "MOTA" in capsys.readouterr().out


@pytest.mark.slow
def test_track_a_folder_of_frames_skips_and_reports_a_bad_frame(detect_run, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    clip = generate_crossing_clips(1, frames=4, seed=2).clips[0]
    for t in (2, 10, 1, 3):  # name order, not the order written: 1, 2, 3, 10
        picture = clip[min(t, 3)].permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(picture)).save(frames / f"frame{t}.png")
    (frames / "frame7.png").write_bytes(b"broken")
    assert main(["track", str(detect_run), str(frames), "--json", "--score-threshold",
                 "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sequences"][0]["frames"] == 4 and "mota" not in result
    assert [s["file"] for s in result["skipped"]] == [str(frames / "frame7.png")]
    assert result["picture"] == str(detect_run / "tracks" / "frames.png")
