"""Transfer learning: frozen means frozen (parameters and batch-norm statistics), fine-tuning
gets its own rates, unfreezing works, weight files cannot run code, errors are one sentence.

Runs use efficientnet_lite0's offline weights on lfw-faces, a few 224x224 batches each."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from cnnlab import TrainConfig, train
from cnnlab.training import transfer
from cnnlab.cli.main import main
from cnnlab.data.transforms import Preprocess
from cnnlab.engine.optim import make_optimizer, make_scheduler
from cnnlab.runs.folder import load_run
from cnnlab.runs.resume import checkpoints
from cnnlab.training.pretrained import pretrained_model
from cnnlab.training.run import resume_config

QUICK = dict(pretrained="efficientnet_lite0", dataset="lfw-faces", batch_size=4,
             limit_batches=1, device="cpu")
HEAD = {"head.fc.weight", "head.fc.bias"}


@pytest.fixture
def initial_states(monkeypatch):
    """Every model transfer.build makes, as it was before training."""
    states, build = [], transfer.build

    def recording_build(*args, **kwargs):
        model = build(*args, **kwargs)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return model
    monkeypatch.setattr(transfer, "build", recording_build)
    return states


def test_feature_extraction_leaves_every_frozen_tensor_bit_identical(tmp_path, initial_states):
    result = train(TrainConfig(**QUICK, epochs=2, out=str(tmp_path / "run")), quiet=True)
    before, after = initial_states[0], load_file(result.run_dir / "model.safetensors")
    pretrained, _ = pretrained_model("efficientnet_lite0")
    assert before.keys() == after.keys()
    for key in before.keys() - HEAD:  # parameters and batch-norm buffers alike
        assert torch.equal(after[key], before[key]), key
        assert torch.equal(after[key], pretrained.state_dict()[key]), key
    assert any(k.endswith("running_var") for k in before)
    assert all(not torch.equal(after[k], before[k]) for k in HEAD)
    assert result.to_dict()["trainable_parameters"] == 1280 * 2 + 2
    assert result.to_dict()["frozen_parameters"] == 4_652_008 - 1281 * 1000
    loaded = load_run(result.run_dir).model  # a fresh model, loaded strictly
    assert all(torch.equal(loaded.state_dict()[k], after[k]) for k in after)

    spec = json.loads((result.run_dir / "config.json").read_text())
    assert spec["preprocess"]["resize"] == 256 and spec["preprocess"]["interpolation"] == "bicubic"
    assert spec["preprocess"]["mean"] == [127 / 255] * 3 and spec["model"]["num_classes"] == 2


def test_frozen_norm_computes_what_torchvisions_frozen_batch_norm_does():
    norm = nn.BatchNorm2d(5, eps=1e-3)
    with torch.no_grad():
        for tensor in (norm.weight, norm.bias, norm.running_mean):
            tensor.normal_()
        norm.running_var.uniform_(0.5, 2)
    theirs = FrozenBatchNorm2d(5, eps=1e-3)
    theirs.load_state_dict({k: v for k, v in norm.state_dict().items()
                            if k != "num_batches_tracked"}, strict=False)
    x = torch.randn(2, 5, 4, 4)
    assert torch.equal(transfer.FrozenNorm(norm)(x), theirs(x))


def test_frozen_batch_norm_ignores_train_mode_until_unfrozen():
    model, _ = pretrained_model("efficientnet_lite0")
    model.reset_classifier(2)
    fresh = model.state_dict()
    transfer.freeze_backbone(model)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, transfer.FrozenNorm))]
    assert len(norms) == 49 and all(isinstance(m, transfer.FrozenNorm) for m in norms)
    assert list(model.state_dict()) == list(fresh)  # a frozen model saves a fresh one's keys
    norm = model.features.stage4[0].project.bn
    stats = norm.running_mean.clone()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = model.eval().forward_features(x)
        model.train()  # what the engine does every epoch
        torch.testing.assert_close(model.forward_features(x), expected, rtol=0, atol=0)
        assert torch.equal(norm.running_mean, stats)
        transfer.unfreeze(model)
        norm = model.features.stage4[0].project.bn
        assert type(norm) is nn.BatchNorm2d and torch.equal(norm.running_mean, stats)
        assert not any(isinstance(m, transfer.FrozenNorm) for m in model.modules())
        model.train()
        model.forward_features(x)
    assert not torch.equal(norm.running_mean, stats)
    assert all(p.requires_grad for p in model.parameters())
    assert list(model.state_dict()) == list(fresh)


def groups_of(config: TrainConfig):
    model = transfer.build(config, num_classes=2)
    optimizer = make_optimizer(transfer.parameter_groups(model, config), config)
    make_scheduler(optimizer, config, steps_per_epoch=5)  # one-cycle: peaks per group
    return model, {g["name"]: g for g in optimizer.param_groups}


@pytest.mark.parametrize("backbone_lr, expected", [(0.0, 0.001), (0.0003, 0.0003)])
def test_finetune_trains_the_backbone_at_its_own_rate(backbone_lr, expected):
    config = TrainConfig(pretrained="efficientnet_lite0", transfer="finetune", lr=0.01,
                         backbone_lr=backbone_lr)
    model, groups = groups_of(config)
    assert list(groups) == ["head", "backbone"]
    assert groups["head"]["max_lr"] == 0.01 and groups["backbone"]["max_lr"] == expected
    named = {id(p): n for n, p in model.named_parameters()}
    assert {named[id(p)] for p in groups["head"]["params"]} == HEAD
    assert len(groups["head"]["params"]) + len(groups["backbone"]["params"]) == len(named)
    assert all(p.requires_grad for p in model.parameters())


def test_features_optimises_only_the_head():
    model, groups = groups_of(TrainConfig(pretrained="efficientnet_lite0"))
    assert list(groups) == ["head"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == sorted(HEAD, reverse=True)


def test_unfreeze_after_trains_the_backbone_from_the_next_epoch(tmp_path, initial_states):
    config = TrainConfig(**{**QUICK, "limit_batches": 2}, epochs=2, unfreeze_after=1,
                         checkpoint_every=1, keep=9, out=str(tmp_path / "run"))
    result = train(config, quiet=True)
    trainable = [m["trainable_parameters"] for m in result.history]
    assert trainable == [2562, 2562 + result.to_dict()["frozen_parameters"]]
    before, after = initial_states[0], load_file(result.run_dir / "model.safetensors")
    changed = [k for k in before.keys() - HEAD if not torch.equal(before[k], after[k])]
    assert "features.stem.conv.weight" in changed
    assert "features.stem.bn.running_mean" in changed  # batch norm trains again

    # Resumed mid-epoch from a checkpoint saved while frozen (the model unfreezes after loading
    # it) and from one saved after unfreezing (restore unfreezes before loading): same weights.
    for newest in ["epoch-0001-step-000001", "epoch-0002-step-000001"]:
        run = tmp_path / newest
        shutil.copytree(result.run_dir, run)
        for path in checkpoints(run):
            if path.name > f"{newest}.safetensors":
                path.unlink()
        (run / "model.safetensors").unlink()
        train(resume_config(str(run), {}), quiet=True)
        assert (run / "model.safetensors").read_bytes() == \
            (result.run_dir / "model.safetensors").read_bytes(), newest


def test_transfer_compare_trains_three_ways_with_the_same_budget(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["transfer-compare", "--pretrained", "efficientnet_lite0", "--dataset",
                 "lfw-faces", "--epochs", "1", "--batch-size", "4", "--limit-batches", "1",
                 "--device", "cpu", "--out", str(out), "--json", "--quiet"])
    assert code == 0
    table = json.loads(capsys.readouterr().out)
    rows = {r["mode"]: r for r in table["rows"]}
    assert list(rows) == ["features", "finetune", "scratch"]
    assert rows["features"]["trainable_parameters"] == 2562
    assert rows["finetune"]["trainable_parameters"] == rows["scratch"]["trainable_parameters"] > 3e6
    assert all(r["seconds_per_epoch"] > 0 and 0 <= r["test_accuracy"] <= 1 for r in rows.values())
    assert "| features |" in (out / "compare.md").read_text()
    assert json.loads((out / "compare.json").read_text())["rows"] == table["rows"]


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_weights_file_that_would_run_code_is_refused(tmp_path, capsys):
    marker, evil = tmp_path / "marker", tmp_path / "evil.pt"
    torch.save({"features.stem.conv.weight": torch.zeros(1), "x": Payload(marker)}, evil)
    code = main(["train", *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in QUICK.items()), []),
                 "--weights-file", str(evil), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "refused" in err and "Traceback" not in err
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the payload is live: loading it unsafely runs it
    assert marker.exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--pretrained", "lenet5"], "there are no pretrained weights for lenet5; models "
                                          "with them: alexnet, efficientnet_lite0,"),
    (["train", "--pretrained", "lenet"], "unknown model 'lenet'"),
    (["train", "--unfreeze-after", "2"], "need --pretrained MODEL"),
    (["train", "--pretrained", "efficientnet_lite0", "--transfer", "finetune",
      "--unfreeze-after", "2"], "is for --transfer features"),
    (["train", "--pretrained", "efficientnet_lite0", "--unfreeze-after", "5", "--epochs", "5"],
     "less than --epochs 5"),
    (["train", "--pretrained", "resnet18", "--weights", "torchvision"], "drop --weights"),
    (["transfer-compare", "--dataset", "lfw-faces"], "needs --pretrained MODEL"),
    (["predict", "--pretrained", "efficientnet_lite0", "no-such.jpg"], "no-such.jpg"),
])
def test_mistakes_exit_2_with_one_sentence(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("cnnlab: ")
    assert err.count("\n") == 0 and err.endswith(".") and "Traceback" not in err


def test_torchvision_weights_load_from_a_file_with_torchvisions_evaluation_transform(tmp_path):
    theirs = torchvision.models.resnet18(weights=None).eval()
    torch.save(theirs.state_dict(), tmp_path / "resnet18.pth")
    ours, record = pretrained_model("resnet18", tmp_path / "resnet18.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs(x))
    p = record.preprocess
    assert (p.size, p.resize, p.interpolation, p.mean) == ((224, 224), 256, "bilinear",
                                                          (0.485, 0.456, 0.406))


def test_old_config_files_without_resize_still_load_and_resize_straight():
    old = {"channels": 1, "size": [28, 28], "mean": [0.5], "std": [0.5]}
    p = Preprocess.from_dict(old)
    assert p.resize is None and p.fit_size(torch.zeros(1, 8, 8, dtype=torch.uint8)).shape == (1, 28, 28)
    cropped = Preprocess(1, (4, 4), (0.0,), (1.0,), resize=8, interpolation="nearest")
    image = torch.arange(64, dtype=torch.uint8).view(1, 8, 8)
    assert torch.equal(cropped.fit_size(image), image[:, 2:6, 2:6])  # the centre
    assert Preprocess.from_dict(cropped.to_dict()) == cropped
