"""Video files as a user meets them: read_frames on every container, a folder of videos
(`--dataset videos:PATH`), UCF101 and HMDB51 in their exact layouts, predict on a clip and the
report of a video run. The videos are real files, written here with PyAV: a few frames each,
a broken one among them."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.moving_shapes import CLASSES, generate_moving_shapes
from cnnlab.data.video_files import read_clip, read_frames
from cnnlab.errors import UserError

CODECS = {".mp4": "libx264", ".avi": "mpeg4", ".mkv": "mpeg4", ".mov": "mpeg4",
          ".webm": "libvpx-vp9"}
FRAMES, SIDE = 6, 16
ONE_STEP = ["--task", "video", "--model", "c3d", "--epochs", "1", "--limit-batches", "1",
            "--batch-size", "4", "--json", "--quiet"]


def write_video(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """uint8 T x H x W x 3 frames -> a real video file, its codec chosen by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODECS[path.suffix], rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def ramp(count: int = FRAMES, side: int = SIDE) -> np.ndarray:
    """Frames of one flat grey that brightens by 40 a frame: each frame says where it is."""
    return np.repeat(np.arange(count, dtype=np.uint8)[:, None, None, None] * 40,
                     3, axis=-1).repeat(side, 1).repeat(side, 2)


def moving_clips(count: int, seed: int = 0):
    """moving-shapes clips as H x W x 3 frame arrays, with their class names."""
    data = generate_moving_shapes(count, frames=FRAMES, size=SIDE, seed=seed)
    return [(np.ascontiguousarray(clip.permute(0, 2, 3, 1).numpy()), CLASSES[label])
            for clip, label in zip(data.images, data.labels.tolist())]


def broken(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1aE\xdf\xa3 this is not a video" * 4)
    return path


@pytest.mark.parametrize("suffix", list(CODECS))
def test_read_frames_gives_every_frame_in_order_as_uint8_tchw(suffix, tmp_path):
    video = write_video(tmp_path / f"ramp{suffix}", ramp())
    frames = read_frames(video)
    assert frames.shape == (FRAMES, 3, SIDE, SIDE) and frames.dtype == torch.uint8
    brightness = frames.float().mean(dim=(1, 2, 3))
    assert (brightness.diff() > 30).all()          # in order, none dropped or repeated
    assert (brightness - torch.arange(FRAMES) * 40).abs().max() < 6  # lossy codecs, near
    assert torch.equal(read_frames(video, max_frames=2), frames[:2])


def test_read_clip_spreads_its_frames_over_the_whole_video(tmp_path):
    video = write_video(tmp_path / "ramp.mp4", ramp(count=6))
    clip = read_clip(video, frames=3, size=(8, 12))
    assert clip.shape == (3, 3, 8, 12)
    # the middle of each third of six frames: frames 1, 3 and 5
    assert clip.float().mean(dim=(1, 2, 3)).sub(torch.tensor([40.0, 120, 200])).abs().max() < 6
    assert read_clip(video, frames=12, size=(8, 8)).shape[0] == 12  # short videos repeat frames


def test_a_cut_video_gives_a_clip_from_the_frames_it_still_holds(tmp_path):
    # noise: every frame costs about as many bytes, so a cut at 70% leaves a few of them
    noise = np.random.default_rng(0).integers(0, 256, (24, 48, 48, 3), dtype=np.uint8)
    whole = write_video(tmp_path / "whole.avi", noise)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size * 7 // 10])
    with av.open(str(cut)) as container:
        assert container.streams.video[0].frames == 24  # the header still promises 24
    left = read_frames(cut)
    assert 2 <= len(left) < 24
    clip = read_clip(cut, frames=2, size=(48, 48))
    # the middles of the two halves of the frames that are left, not of the 24 promised
    expected = left[[len(left) // 4, len(left) * 3 // 4]]
    assert (clip.float() - expected.float()).abs().mean() < 2


@pytest.mark.parametrize("make, message", [
    (lambda d: broken(d / "broken.mp4"), "is not a readable video file"),
    (lambda d: d / "absent.mp4", "does not exist"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt",
     "is not a readable video file"),
])
def test_a_file_that_is_no_video_is_one_sentence(make, message, tmp_path):
    with pytest.raises(UserError, match=message) as caught:
        read_frames(make(tmp_path))
    assert str(caught.value).count(". ") == 0 and "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for number, (frames, name) in enumerate(moving_clips(16)):
        write_video(root / name / f"clip{number:02d}{'.mp4' if number % 2 else '.avi'}", frames)
    broken(root / "up" / "broken.mp4")
    (root / "down" / "notes.txt").write_text("not a video")
    return root


def test_a_folder_of_videos_loads_as_clips_with_bad_files_reported(video_folder):
    splits = load_dataset(f"videos:{video_folder}?frames=4&size=24")
    assert splits.classes == sorted(CLASSES)
    parts = (splits.train, splits.val, splits.test)
    assert sum(len(p) for p in parts) == 16
    assert all(tuple(p.images.shape[1:]) == (4, 3, 24, 24) for p in parts)
    assert {Path(file).name for file, _ in splits.problems} == {"broken.mp4", "notes.txt"}


@pytest.mark.parametrize("suffix, message", [
    ("?frames=0", "is not an option"), ("?speed=2", "is not an option"),
    ("/missing", "does not exist"),
])
def test_bad_video_folder_arguments_are_one_sentence(suffix, message, video_folder, capsys,
                                                     tmp_path):
    dataset = f"videos:{video_folder}{suffix}"
    assert main(["train", *ONE_STEP, "--dataset", dataset, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_files_fail_stops_at_the_first_unusable_file(video_folder, capsys, tmp_path):
    assert main(["train", *ONE_STEP, "--dataset", f"videos:{video_folder}?frames=4&size=16",
                 "--bad-files", "fail", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--bad-files skip" in err and ("broken.mp4" in err or "notes.txt" in err)


@pytest.mark.slow
def test_train_predict_and_report_a_run_on_a_video_folder(video_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *ONE_STEP, "--dataset", f"videos:{video_folder}?frames=4&size=16",
                 "--out", str(run)]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["test_accuracy"] <= 1
    skipped = (run / "skipped.txt").read_text()
    assert "broken.mp4" in skipped and "notes.txt" in skipped
    # predict: a video, a folder of its frames, and a broken file
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for number, frame in enumerate(moving_clips(1, seed=5)[0][0]):
        Image.fromarray(frame).save(frames_dir / f"frame_{number:04d}.png")
    video = next((video_folder / "left").iterdir())
    assert main(["predict", str(run), str(video), str(frames_dir),
                 str(video_folder / "up" / "broken.mp4"), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in result["predictions"]] == [str(video), str(frames_dir)]
    for prediction in result["predictions"]:
        assert prediction["frames"] == 4 and prediction["top"][0]["class"] in CLASSES
        assert sum(t["probability"] for t in prediction["top"]) <= 1 + 1e-6
    assert "not a readable video file" in result["errors"][0]["error"]
    # the report draws the 3-D kernels as strips over time instead of failing on them
    assert main(["report", str(run), "--json"]) == 0
    page = (run / "report.html").read_text()
    assert "16 kernels (rows), each 3 frames of 3x3" in page
    assert "channels (rows) over 4 time steps" in page


@pytest.mark.parametrize("name, kernels", [
    ("r3d_18", "stem.0: 16 of 64 kernels (rows), each 3 frames of 7x7"),
    ("r2plus1d_18", "stem.0: 16 of 45 kernels (rows), each 1 frame of 7x7 (left to right) "
                    "(spatial only"),
])
def test_the_report_draws_the_video_resnets_kernels_over_time(name, kernels):
    from html import unescape

    from cnnlab.data.transforms import Preprocess
    from cnnlab.models import create_model
    from cnnlab.tasks.video_figures import inside_sections
    clip = torch.randint(0, 256, (4, 3, SIDE, SIDE), dtype=torch.uint8)
    sections = inside_sections(create_model(name, num_classes=3).eval(), clip,
                               Preprocess(3, (SIDE, SIDE), (0.45,) * 3, (0.225,) * 3), "a clip")
    page = unescape("".join(sections))
    assert kernels in page and page.count("<img") == 1 + 1 + 4  # kernels, clip, 4 layers
    assert "over 4 time steps (columns)" in page and "over 1 time step (columns)" in page


# --- UCF101 and HMDB51, in their archives' exact layouts -----------------------------------

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "Basketball"]


def crlf(lines: list[str]) -> str:
    return "".join(f"{line}\r\n" for line in lines)  # the lists as the archives ship them


@pytest.fixture(scope="module")
def ucf101_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    clips = iter(moving_clips(15, seed=1))
    train, test = [], []
    for index, name in enumerate(UCF_CLASSES, start=1):
        for group in range(1, 6):
            video = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_video(root / "UCF-101" / video, next(clips)[0])
            # groups 1 and 2 test, the rest train: a group never on both sides
            (test.append(video) if group <= 2 else train.append(f"{video} {index}"))
    broken(root / "UCF-101" / "Archery" / "v_Archery_g03_c01.avi")
    train.append("Basketball/v_Basketball_g09_c01.avi 3")  # listed, never extracted
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text(crlf([f"{i} {n}" for i, n in enumerate(UCF_CLASSES, 1)]))
    (lists / "trainlist01.txt").write_text(crlf(train))
    (lists / "testlist01.txt").write_text(crlf(test))
    return root


def test_ucf101_reads_split_1_of_its_exact_layout(ucf101_dir):
    splits = load_dataset("ucf101", str(ucf101_dir))
    assert splits.classes == UCF_CLASSES
    assert len(splits.train) + len(splits.val) == 8 and len(splits.test) == 6
    assert torch.bincount(splits.test.labels).tolist() == [2, 2, 2]
    assert tuple(splits.test.images.shape[1:]) == (8, 3, 112, 112)
    reasons = {Path(file).name: why for file, why in splits.problems}
    assert set(reasons) == {"v_Archery_g03_c01.avi", "v_Basketball_g09_c01.avi"}
    assert "not on the disk" in reasons["v_Basketball_g09_c01.avi"]


HMDB_CLASSES = ["brush_hair", "cartwheel", "chew"]


@pytest.fixture(scope="module")
def hmdb51_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("hmdb")
    root = data / "hmdb51"
    clips = iter(moving_clips(15, seed=2))
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for name in HMDB_CLASSES:
        rows = []
        for number, tag in enumerate([1, 1, 1, 2, 0]):  # 1 train, 2 test, 0 in neither
            video = f"Some_movie_{name}_f_cm_np1_fr_med_{number}.avi"
            write_video(root / name / video, next(clips)[0])
            rows.append(f"{video} {tag} ")
        (splits / f"{name}_test_split1.txt").write_text(crlf(rows))
        (splits / f"{name}_test_split2.txt").write_text(crlf(rows[::-1]))  # ignored
    broken(root / "chew" / "Some_movie_chew_f_cm_np1_fr_med_0.avi")
    return data


def test_hmdb51_reads_split_1_of_its_exact_layout(hmdb51_dir):
    splits = load_dataset("hmdb51", str(hmdb51_dir))
    assert splits.classes == HMDB_CLASSES
    # three train videos a class (one broken), one test; the tag-0 videos in neither
    assert len(splits.train) + len(splits.val) == 8 and len(splits.test) == 3
    assert [Path(f).name for f, _ in splits.problems] == ["Some_movie_chew_f_cm_np1_fr_med_0.avi"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ucf101", "hmdb51"])
def test_one_training_step_on_each_public_set(name, ucf101_dir, hmdb51_dir, tmp_path, capsys):
    data_dir = {"ucf101": ucf101_dir, "hmdb51": hmdb51_dir}[name]
    run = tmp_path / "run"
    assert main(["train", *ONE_STEP, "--dataset", name, "--data-dir", str(data_dir),
                 "--out", str(run)]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["test_accuracy"] <= 1
    assert "not a readable video file" in (run / "skipped.txt").read_text()


@pytest.mark.parametrize("name", ["ucf101", "hmdb51"])
def test_a_missing_public_set_asks_for_download_in_one_sentence(name, tmp_path, capsys):
    assert main(["train", *ONE_STEP, "--dataset", name, "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "is missing" in err and "--download" in err and "Traceback" not in err


def test_download_without_a_rar_extractor_says_so_before_fetching(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no unrar, 7z, bsdtar or unar on it
    data = tmp_path / "data"
    assert main(["train", *ONE_STEP, "--dataset", "ucf101", "--download", "--data-dir",
                 str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no program to extract them was found" in err and "unrar" in err
    assert not data.exists() or not any(data.iterdir())  # nothing was downloaded
