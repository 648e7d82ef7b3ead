"""A segmenter on a pretrained encoder: --pretrained efficientnet_lite0 fills U-Net's and
DeepLabV3's backbone with the shipped ImageNet weights offline, `features` freezes exactly
the backbone, and the run folder evaluates and predicts with the encoder's normalisation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnlab import TrainConfig
from cnnlab.cli.main import main
from cnnlab.training import prepare as preparing
from cnnlab.training.pretrained import pretrained_model

QUICK = dict(task="segment", dataset="shapes", pretrained="efficientnet_lite0", batch_size=8,
             limit_batches=2, device="cpu")


@pytest.mark.parametrize("model, options", [("unet", {}), ("deeplabv3", {"rates": [1, 2, 3]})])
def test_the_backbone_starts_from_the_imagenet_weights_and_features_freezes_only_it(
        model, options):
    config = TrainConfig(**QUICK, model=model, model_kwargs=options, transfer="features")
    spec, pipeline, built = preparing.prepare(config, torch.device("cpu"))
    imagenet = pretrained_model("efficientnet_lite0")[0].state_dict()
    for key, value in built.backbone.state_dict().items():
        assert torch.equal(value, imagenet[key]), key
    trainable = {n for n, p in built.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith("backbone.") for n in trainable)
    assert any(n.startswith("backbone.") for n, _ in built.named_parameters())
    # shapes' own 32x32 size (not 224), fed the way Lite0's weights expect
    assert pipeline.preprocess.size == (32, 32)
    assert pipeline.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert spec.model_args["kwargs"]["backbone"] == "efficientnet_lite0"


def test_a_finetuned_unet_run_evaluates_and_predicts_from_its_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "segment", "--model", "unet", "--pretrained",
                 "efficientnet_lite0", "--transfer", "finetune", "--dataset", "shapes",
                 "--epochs", "1", "--limit-batches", "2", "--batch-size", "8", "--out", str(run),
                 "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"test_miou", "test_pixel_accuracy"} <= trained.keys()
    assert trained["frozen_parameters"] == 0
    weights = load_file(run / "model.safetensors")
    assert any(key.startswith("backbone.features.stage8") for key in weights)
    assert main(["evaluate", str(run), "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["miou"] <= 1  # the whole test split
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(image)
    assert main(["predict", str(run), str(image), "--out-dir", str(tmp_path / "out"),
                 "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    mask = Image.open(predicted[0]["mask"])
    assert mask.size == (30, 40)  # at the photograph's own size


def test_a_backbone_the_model_cannot_take_is_one_sentence(tmp_path, capsys):
    assert main(["train", "--task", "segment", "--model", "unet", "--pretrained", "resnet18",
                 "--dataset", "shapes", "--out", str(tmp_path / "r")]) == 2
    assert "backbone" in capsys.readouterr().err
    assert main(["train", "--task", "segment", "--model", "unet", "--pretrained",
                 "efficientnet_lite0", "--model-kwargs", "backbone=resnet18", "--dataset",
                 "shapes", "--out", str(tmp_path / "s")]) == 2
    assert "drop backbone=resnet18" in capsys.readouterr().err
