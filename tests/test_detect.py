"""Detection and instance segmentation as a user meets them: COCO's numbers equal
pycocotools' own, torchvision's COCO checkpoints load for other classes, and a run on
shapes-objects trains, evaluates and predicts with the usual run folder and --json."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import create_model
from cnnlab.cli.main import main
from cnnlab.data.scenes import generate_scenes
from cnnlab.tasks.detect import DetectionTally

SMOKE = ["--dataset", "shapes-objects", "--epochs", "1", "--limit-batches", "2",
         "--batch-size", "4"]


def _random_detections(seed: int, images: int = 6, size: int = 64):
    g = torch.Generator().manual_seed(seed)
    truths, guesses = [], []
    for _ in range(images):
        n = int(torch.randint(0, 4, (), generator=g))
        xy = torch.rand(n, 2, generator=g) * (size - 20)
        wh = 4 + torch.rand(n, 2, generator=g) * 16
        boxes = torch.cat([xy, xy + wh], 1)
        truths.append({"boxes": boxes, "labels": torch.randint(1, 4, (n,), generator=g)})
        # near misses and near hits: each box moved by a few pixels (valid boxes only: what
        # an inverted box means is not COCO's question)
        jitter = boxes + (torch.randn(n, 2, generator=g) * 2).repeat(1, 2)
        extra = torch.cat([xy[:1], xy[:1] + 10], 1) if n else torch.zeros(0, 4)
        guesses.append({"boxes": torch.cat([jitter, extra]),
                        "scores": torch.rand(n + len(extra), generator=g),
                        "labels": torch.cat([truths[-1]["labels"],
                                             torch.randint(1, 4, (len(extra),), generator=g)])})
    return truths, guesses


def _pycocotools_map(truths, guesses) -> tuple[float, float]:
    """COCOeval run directly, as its own documentation does."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]  # noqa
    images = [{"id": i, "width": 64, "height": 64} for i in range(len(truths))]
    annotations = [{"id": len(images) * 100 + i * 10 + k, "image_id": i, "category_id": int(c),
                    "bbox": xywh(b), "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": 0}
                   for i, t in enumerate(truths) for k, (b, c) in
                   enumerate(zip(t["boxes"], t["labels"]))]
    ground = COCO()
    ground.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c} for c in (1, 2, 3)]}
    ground.createIndex()
    results = [{"image_id": i, "category_id": int(c), "bbox": xywh(b), "score": float(s)}
               for i, g in enumerate(guesses)
               for b, c, s in zip(g["boxes"], g["labels"], g["scores"])]
    found = COCOeval(ground, ground.loadRes(results), "bbox")
    found.evaluate()
    found.accumulate()
    found.summarize()
    return float(found.stats[0]), float(found.stats[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cnnlabs_map_equals_pycocotools_cocoeval_on_the_same_detections(seed):
    truths, guesses = _random_detections(seed)
    tally = DetectionTally()
    tally.add(None, guesses[:3], truths[:3])  # in two batches, as an evaluation pass adds them
    tally.add(None, guesses[3:], truths[3:])
    ours = tally.result().metrics()
    coco_map, coco_map50 = _pycocotools_map(truths, guesses)
    assert ours["map"] == pytest.approx(coco_map, abs=1e-6)
    assert ours["map50"] == pytest.approx(coco_map50, abs=1e-6)


@pytest.mark.slow
def test_torchvisions_maskrcnn_checkpoint_loads_for_three_classes_and_trains(tmp_path):
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    theirs = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)  # COCO's 91 classes
    torch.save(theirs.state_dict(), tmp_path / "maskrcnn.pth")
    ours = create_model("maskrcnn", num_classes=3, weights_file=tmp_path / "maskrcnn.pth",
                        min_size=64, max_size=64)
    torch.testing.assert_close(ours.backbone.body.layer4[2].conv3.weight,
                               theirs.backbone.body.layer4[2].conv3.weight)
    assert ours.roi_heads.box_predictor.cls_score.out_features == 3  # replaced, as the tutorial
    assert ours.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 3
    scenes = generate_scenes(2, 64, seed=0)
    targets = [{"boxes": t["boxes"], "labels": t["labels"].clamp(max=2),
                "masks": t["masks"]} for t in scenes.targets]
    losses = ours.train()(list(scenes.images.float() / 255), targets)
    assert {"loss_mask", "loss_classifier", "loss_objectness"} <= losses.keys()
    sum(losses.values()).backward()
    assert ours.roi_heads.mask_predictor.mask_fcn_logits.weight.grad is not None


def test_train_evaluate_and_predict_a_detection_run(tmp_path, capsys):
    run = tmp_path / "det"
    assert main(["train", "--task", "detect", "--model", "fcos", "--model-kwargs",
                 "backbone=resnet18", *SMOKE, "--out", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"test_map", "test_map50", "test_map75"} <= result.keys()
    assert all(0 <= result[k] <= 1 for k in ("test_map", "test_map50", "test_map75"))
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["kwargs"]["min_size"] == 64  # chosen from the data, recorded for loading

    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["class"] for c in report["per_class"]} <= {"circle", "square", "triangle"}

    image = tmp_path / "scene.png"
    scene = generate_scenes(1, 64, seed=9).images[0]
    Image.fromarray(np.ascontiguousarray(scene.permute(1, 2, 0).numpy())).resize(
        (128, 96)).save(image)
    assert main(["predict", str(run), str(image), "--out-dir", str(tmp_path / "out"),
                 "--score-threshold", "0", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["predictions"][0]
    assert Image.open(found["picture"]).size == (128, 96)
    for item in found["detections"]:
        x1, y1, x2, y2 = item["box"]  # in the photograph's own pixels
        assert -1 <= x1 <= x2 <= 129 and -1 <= y1 <= y2 <= 97
        assert item["class"] in ("circle", "square", "triangle") and 0 <= item["score"] <= 1


def test_an_instance_run_reports_mask_map(tmp_path, capsys):
    assert main(["train", "--task", "instance", "--model", "maskrcnn", "--model-kwargs",
                 "backbone=resnet18", *SMOKE, "--out", str(tmp_path / "inst"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"test_map50", "test_mask_map", "test_mask_map50"} <= result.keys()
    chosen = json.loads((tmp_path / "inst" / "config.json").read_text())["model"]["kwargs"]
    assert (chosen["fpn_channels"], chosen["mask_channels"]) == (64, 128)  # small images


def test_wrong_pairings_of_task_model_and_data_are_one_sentence(tmp_path, capsys):
    assert main(["train", "--task", "detect", "--model", "fcos", "--dataset", "digits",
                 "--out", str(tmp_path / "a")]) == 2
    assert "no boxes to learn from" in capsys.readouterr().err
    assert main(["train", "--task", "detect", "--model", "maskrcnn", "--dataset",
                 "shapes-objects", "--out", str(tmp_path / "b")]) == 2
    assert "made for --task instance" in capsys.readouterr().err
    assert main(["train", "--dataset", "shapes-objects", "--out", str(tmp_path / "c")]) == 2
    assert "holds boxes, not one class per image" in capsys.readouterr().err


@pytest.mark.slow
def test_a_detection_run_killed_mid_epoch_resumes_bit_identical(tmp_path):
    import os
    import subprocess
    import sys
    import time
    train = [sys.executable, "-m", "cnnlab", "train", "--task", "detect", "--model", "fcos",
             "--model-kwargs", "backbone=resnet18", "--dataset", "shapes-objects", "--epochs",
             "2", "--limit-batches", "4", "--batch-size", "4", "--checkpoint-every", "2",
             "--deterministic", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels in every process
    straight, run = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run([*train, "--out", str(straight)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen([*train, "--out", str(run)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (run / "checkpoints" / "epoch-0002-step-000002.safetensors").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.kill()  # SIGKILL, mid-epoch: no chance to clean up
    process.wait()
    assert not (run / "model.safetensors").exists()
    resumed = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(run),
                              "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    losses = lambda folder: [json.loads(line)["train_loss"] for line in  # noqa: E731
                             (folder / "metrics.jsonl").read_text().splitlines()]
    assert losses(run) == losses(straight) and len(losses(run)) == 2


def test_a_detector_on_the_shipped_lite0_starts_from_its_imagenet_weights():
    from cnnlab import TrainConfig
    from cnnlab.training import prepare as preparing
    from cnnlab.training.pretrained import pretrained_model
    config = TrainConfig(task="detect", model="fcos", dataset="shapes-objects",
                         pretrained="efficientnet_lite0", transfer="features", batch_size=4,
                         limit_batches=1, device="cpu")
    _, pipeline, built = preparing.prepare(config, torch.device("cpu"))
    imagenet = pretrained_model("efficientnet_lite0")[0].state_dict()
    for key, value in built.backbone.body.state_dict().items():
        assert torch.equal(value, imagenet["features." + key]), key
    trainable = {n for n, p in built.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("backbone.body.") for n in trainable)
    assert any(n.startswith("backbone.fpn.") for n in trainable)  # the pyramid is new
    # the detector normalises its [0, 1] input the way Lite0 was trained
    assert built.transform.image_mean == pytest.approx([127 / 255] * 3)
    assert pipeline.preprocess.mean == (0.0, 0.0, 0.0)


def test_an_images_errors_count_missed_objects_and_detections_of_nothing():
    from cnnlab.tasks.detect_report import errors_in
    truth = {"boxes": torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]]),
             "labels": torch.tensor([1, 2])}
    found = {"boxes": torch.tensor([[1., 1., 10., 10.], [0., 0., 10., 10.], [40., 40., 50., 50.],
                                    [20., 20., 30., 30.]]),
             "labels": torch.tensor([1, 1, 1, 1]), "scores": torch.tensor([.9, .8, .7, .2])}
    # the first finds object 1; the second is a duplicate of it; the third finds nothing;
    # the fourth is scored below the threshold; object 2 (class 2) is missed
    assert errors_in(found, truth) == 3
    assert errors_in({k: v[:1] for k, v in found.items()}, {k: v[:1] for k, v in truth.items()}) == 0
