"""--task video: the moving-shapes clips, the video models, and the CLI end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab import TrainConfig
from cnnlab.cli.main import main
from cnnlab.data.moving_shapes import CLASSES, generate_moving_shapes
from cnnlab.models import create_model, model_info

from resume_check import assert_resumes_exactly

VIDEO_MODELS = ["c3d", "frame_average", "r3d_18", "r2plus1d_18", "mc3_18"]


@pytest.fixture(scope="module")
def clips():
    return generate_moving_shapes(400, seed=3)


def test_clips_are_frames_first_uint8_balanced_and_seeded(clips):
    assert clips.images.shape == (400, 8, 3, 32, 32) and clips.images.dtype == torch.uint8
    assert torch.bincount(clips.labels).tolist() == [100] * len(CLASSES)
    again = generate_moving_shapes(400, seed=3)
    assert torch.equal(again.images, clips.images) and torch.equal(again.labels, clips.labels)


def test_the_class_is_in_the_motion_only(clips):
    centres, labels = clips.centres.numpy(), clips.labels.numpy()
    # consecutive centres move 2 or 3 pixels (on the torus) in the class's direction
    step = (np.diff(centres, axis=1) + 16) % 32 - 16
    direction = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}
    for label, (dy, dx) in direction.items():
        moves = step[labels == label]
        speed = np.abs(moves).sum(axis=-1)
        assert np.allclose(moves, np.stack([dy * speed, dx * speed], -1), atol=1e-4)
        assert set(np.round(speed).astype(int).ravel()) <= {2, 3}
    # every single frame places the shape uniformly, whatever the class: per class and frame,
    # the mean centre is the torus's middle and each half of the frame holds about half
    for label in range(len(CLASSES)):
        frames = centres[labels == label]  # clips x T x 2
        assert np.abs(frames.mean(axis=0) - 16).max() < 4.5
        assert np.abs((frames < 16).mean(axis=0) - 0.5).max() < 0.25
    # reversing time turns one direction into its opposite: the same frames, another class
    reversed_right = centres[labels == 3][:, ::-1]
    step_back = (np.diff(reversed_right, axis=1) + 16) % 32 - 16
    assert (step_back[..., 1] < 0).all() and np.allclose(step_back[..., 0], 0, atol=1e-4)


@pytest.mark.parametrize("name", VIDEO_MODELS)
def test_video_models_take_frames_first_clips(name):
    assert model_info(name).task == "video"
    model = create_model(name, num_classes=4).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 8, 3, 32, 32)).shape == (2, 4)


def test_torchvision_video_resnets_keep_torchvision_keys():
    from torchvision.models import video
    ours = create_model("r3d_18", num_classes=400)
    assert list(ours.state_dict()) == list(video.r3d_18().state_dict())


def test_frame_average_cannot_see_the_order_of_frames():
    model = create_model("frame_average", num_classes=4).eval()
    clip = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(clip), model(clip.flip(1)), atol=1e-5)


def test_train_and_evaluate_a_video_run_from_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "video", "--epochs", "1", "--limit-batches", "2",
                 "--json", "--out", str(run)]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= trained["test_accuracy"] <= 1.0
    assert json.loads((run / "config.json").read_text())["train"]["task"] == "video"
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "video" and report["images"] == 480
    assert [c["class"] for c in report["per_class"]] == CLASSES


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet18"], "model resnet18 is made for --task classify, not video"),
    (["--dataset", "digits"], "holds images, not clips"),
])
def test_user_mistakes_are_one_sentence_and_status_2(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "video", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    *before, last = err.strip().splitlines()
    assert message in last and last.startswith("cnnlab: error:") and "Traceback" not in err
    assert len(before) <= 1 and all("starts from the c3d-moving-shapes recipe" in line
                                    for line in before)


def test_clips_given_to_classification_are_one_sentence(tmp_path, capsys):
    assert main(["train", "--dataset", "moving-shapes", "--out", str(tmp_path / "r")]) == 2
    assert "holds clips, not images; train it with --task video" in capsys.readouterr().err


@pytest.mark.slow
def test_a_video_run_resumes_exactly_from_a_mid_epoch_checkpoint(tmp_path):
    assert_resumes_exactly(TrainConfig(task="video", model="c3d", dataset="moving-shapes",
                                       epochs=2, limit_batches=2, batch_size=8), tmp_path,
                           "val_accuracy")
