"""Following objects over time: `cnnlab track RUN VIDEO|FRAMES_DIR`.

A detection or instance-segmentation run finds the objects in every frame on its own; this
package links those detections into tracks, one stable id per object, the way
tracking-by-detection does it (SORT, Bewley et al. 2016, without its Kalman filter):

    overlap.py   box IoU and mask IoU between two sets of objects
    linking.py   frame by frame, an optimal assignment of detections to tracks (scipy's
                 linear_sum_assignment on 1 - IoU), birth after a few hits, death after a
                 few missed frames
    metrics.py   CLEAR-MOT's MOTA and identity switches, and IDF1, against ground truth
    frames.py    what is tracked: a folder of frames, a video file, or a generated clip
    sheet.py     the frames with every track's box (and mask) and id drawn
    command.py   the command: detect, link, measure, write the sheet and the tracks' JSON

DEFAULTS imports no torch, so `cnnlab track --help` stays quick.
"""

# generated clips with known identities (data/crossing_clips.py): what `track` can score
GENERATED = "crossing-shapes"

DEFAULTS = {
    "score_threshold": 0.5,  # detections scored below this are not tracked
    "iou_threshold": 0.3,    # least IoU between a track's expected place and a detection
    "min_hits": 2,           # frames in a row a new track must be found before it gets an id
    "max_missed": 10,        # frames a track may go unseen (behind another object) and live
    "match_iou": 0.5,        # the metrics: a track's box matches an object's from this IoU
}
