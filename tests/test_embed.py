"""--task embed: the metric-learning losses by hand, verification metrics against
scikit-learn, held-out classes, and the train / evaluate / verify commands end to end."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

from cnnlab import TrainConfig
from cnnlab.cli.main import main
from cnnlab.data.catalog import DataSplits, Split
from cnnlab.errors import UserError
from cnnlab.tasks.embed import holdout, identification, roc, ten_fold, verification
from cnnlab.tasks.metric_losses import arcface_logits, batch_hard, triplet_loss

from resume_check import assert_resumes_exactly


def test_arcface_logits_by_hand():
    cosines = torch.tensor([[0.5, 0.2], [0.1, -0.3], [-0.95, 0.4]])
    labels = torch.tensor([0, 1, 0])
    m, s = 0.5, 30.0
    expected = torch.tensor([
        [s * math.cos(math.acos(0.5) + m), s * 0.2],
        [s * 0.1, s * math.cos(math.acos(-0.3) + m)],
        # theta + m would pass pi: the authors' fallback cos(theta) - m sin(m)
        [s * (-0.95 - m * math.sin(m)), s * 0.4]])
    assert torch.allclose(arcface_logits(cosines, labels, m, s), expected, atol=1e-4)


def test_batch_hard_picks_the_farthest_positive_and_nearest_negative():
    points = torch.tensor([[0., 0.], [1., 0.], [3., 0.], [0., 2.], [0., 5.]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    positive, negative, positive_index, negative_index, valid = batch_hard(points, labels)
    assert positive_index.tolist() == [2, 2, 0, 4, 3]
    assert negative_index.tolist() == [3, 3, 3, 0, 0]
    assert torch.allclose(positive, torch.tensor([3., 2., 3., 3., 3.]))
    assert torch.allclose(negative, torch.tensor([2., math.sqrt(5), math.sqrt(13), 2., 5.]))
    assert valid.all()
    # hinges: 3-2+0.2, 0, 0, 3-2+0.2, 0 -> mean 0.48
    assert triplet_loss(points, labels, margin=0.2).item() == pytest.approx(0.48, abs=1e-5)


def test_verification_matches_scikit_learn():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, size=40))
    centres = torch.from_numpy(rng.normal(size=(4, 8))).float()
    embeddings = torch.nn.functional.normalize(
        centres[labels] + 0.8 * torch.from_numpy(rng.normal(size=(40, 8))).float(), dim=1)
    metrics = verification(embeddings, labels)
    i, j = np.triu_indices(40, k=1)
    e = embeddings.double().numpy()
    scores, same = (e[i] * e[j]).sum(1), labels.numpy()[i] == labels.numpy()[j]
    fpr, tpr, thresholds = roc_curve(same, scores, drop_intermediate=False)
    ours = roc(scores, same)
    assert np.allclose(ours[0], fpr) and np.allclose(ours[1], tpr)
    assert np.allclose(ours[2][1:], thresholds[1:])
    assert metrics["auc"] == pytest.approx(roc_auc_score(same, scores), abs=1e-9)
    assert metrics["tar_at_far_1e-2"] == pytest.approx(tpr[fpr <= 1e-2].max())
    assert metrics["tar_at_far_1e-3"] == pytest.approx(tpr[fpr <= 1e-3].max())
    accuracy = [((scores >= t) == same).mean() for t in thresholds[1:]]
    assert metrics["verification_accuracy"] == pytest.approx(max(accuracy))
    assert metrics["pairs"] == len(scores)


def test_ten_fold_protocol_picks_each_folds_threshold_on_the_other_nine():
    rng = np.random.default_rng(1)
    same = np.tile([True] * 6 + [False] * 6, 10)
    scores = np.round(rng.normal(size=120) + same, 2)  # rounded: ties happen, as in real scores
    folds = np.repeat(np.arange(10), 12)
    accuracies = []
    for fold in range(10):  # by brute force: every score as a threshold, the highest of a tie
        rest = folds != fold
        candidates = np.unique(scores[rest])[::-1]
        rates = [((scores[rest] >= t) == same[rest]).mean() for t in candidates]
        threshold = candidates[int(np.argmax(rates))]
        accuracies.append(((scores[folds == fold] >= threshold) == same[folds == fold]).mean())
    result = ten_fold(scores, same, folds)
    assert result["pairs_accuracy"] == pytest.approx(np.mean(accuracies))
    assert result["pairs_accuracy_std"] == pytest.approx(np.std(accuracies))
    assert result["pairs_folds"] == 10


def test_identification_uses_each_identitys_first_image_as_gallery():
    embeddings = torch.tensor([[1., 0.], [0., 1.], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 0, 1, 1])
    # probes 2 -> 0 (right), 3 -> 1 (right), 4 -> 0 (wrong)
    assert identification(embeddings, labels) == pytest.approx(2 / 3)


def _splits():
    images = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1)
    labels = torch.tensor([0, 1, 2, 3] * 3)
    part = lambda a, b: Split(images[a:b], labels[a:b])  # noqa: E731
    return DataSplits("toy", ["a", "b", "c", "d"], part(0, 4), part(4, 8), part(8, 12))


def test_holdout_keeps_unseen_classes_for_the_test_split_only():
    splits = holdout(_splits(), "c,3")
    assert splits.classes == ["a", "b"]
    assert splits.val.labels.tolist() == [0, 1]
    # the seen classes' test images are trained on: no split would use them otherwise
    assert splits.train.images.flatten().tolist() == [0, 1, 8, 9]
    assert splits.train.labels.tolist() == [0, 1, 0, 1]
    assert splits.test.labels.tolist() == [0, 1] * 3  # c -> 0, d -> 1, from all three splits
    assert splits.test.images.flatten().tolist() == [2, 3, 6, 7, 10, 11]
    with pytest.raises(UserError, match="lacks"):
        holdout(_splits(), "e")
    with pytest.raises(UserError, match="at least 2"):
        holdout(_splits(), "a,b,c")


def _png(path, image: np.ndarray):
    Image.fromarray((image * 15).astype(np.uint8)).resize((32, 32)).save(path)
    return str(path)


@pytest.mark.slow  # trains
def test_train_evaluate_and_verify_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--model-kwargs", "backbone=lenet5",
                 "--epochs", "1", "--limit-batches", "2", "--json", "--quiet",
                 "--out", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("test_auc", "test_tar_at_far_1e-2", "test_tar_at_far_1e-3", "test_threshold",
                "test_verification_accuracy", "test_top1"):
        assert key in result
    assert 0.0 <= result["test_auc"] <= 1.0
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "val_auc" in last and "val_threshold" in last
    assert "7,8,9" in (run / "config.json").read_text()  # the recipe's held-out classes

    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "embed" and report["identities"] == 3  # 7, 8, 9 only
    assert report["auc"] == pytest.approx(report["sklearn_auc"], abs=1e-9)
    # (training's test AUC saw --limit-batches 2 batches of the test split; this, all of it)

    from sklearn.datasets import load_digits
    digits = load_digits()
    a = _png(tmp_path / "a.png", digits.images[7])
    b = _png(tmp_path / "b.png", digits.images[8])
    assert main(["verify", str(run), a, b, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) >= {"similarity", "distance", "threshold", "same"}
    assert answer["distance"] == pytest.approx(math.sqrt(2 - 2 * answer["similarity"]), abs=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["--holdout-classes", "7,8,x"], "names 'x', which data set digits lacks"),
    (["--holdout-classes", "0,1,2,3,4,5,6,7,8"], "needs at least 2"),
    (["--model-kwargs", "grid=4", "pyramid=[0]"], "the pyramid's grids must be whole numbers"),
    (["--model-kwargs", "grid=4", "pyramid=[8]"], "from 1 to 3, coarser than grid 4, not [8]"),
])
def test_user_mistakes_are_one_sentence_and_status_2(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "embed", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    *before, last = err.strip().splitlines()
    assert message in last and last.startswith("cnnlab: error:") and "Traceback" not in err
    assert len(before) <= 1 and all("embed-digits" in line for line in before)


def test_the_pyramid_adds_the_whole_image_weighted_to_count_as_much_as_the_grid():
    from cnnlab.models import create_model
    model = create_model("embedding", num_classes=3, in_channels=1, grid=4, pyramid=[1]).eval()
    x = torch.randn(2, 1, 28, 28)
    maps = model.backbone.forward_features(x)  # LeNet-5: 16 channels of 5x5
    pooled = model.pooled(x)
    assert pooled.shape == (2, 16 * (1 + 4 * 4))
    torch.testing.assert_close(pooled[:, :16], maps.mean((2, 3)) * 4)  # 1 cell, weight 4/1
    torch.testing.assert_close(pooled[:, 16:], torch.nn.functional.adaptive_avg_pool2d(
        maps, 4).flatten(1))
    plain = create_model("embedding", num_classes=3, in_channels=1, grid=4).eval()
    assert plain.pooled(x).shape == (2, 16 * 4 * 4)  # runs trained before the pyramid load


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("embed") / "run"
    assert main(["train", "--task", "embed", "--epochs", "1", "--limit-batches", "2",
                 "--quiet", "--out", str(run)]) == 0
    return run


def test_loss_is_the_issues_name_for_metric_loss(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--loss", "triplet", "--epochs", "1",
                 "--limit-batches", "1", "--quiet", "--out", str(run)]) == 0
    train = json.loads((run / "config.json").read_text())["train"]
    assert train["metric_loss"] == "triplet" and "loss" not in train  # one name on record


def test_verify_names_an_unreadable_file_in_one_sentence(tiny_run, tmp_path, capsys):
    from sklearn.datasets import load_digits
    good = _png(tmp_path / "good.png", load_digits().images[7])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    capsys.readouterr()
    assert main(["verify", str(tiny_run), good, str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(broken) in err and "Traceback" not in err


def test_predict_embeds_the_readable_files_and_names_the_others(tiny_run, tmp_path, capsys):
    from sklearn.datasets import load_digits
    good = _png(tmp_path / "good.png", load_digits().images[8])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    capsys.readouterr()
    assert main(["predict", str(tiny_run), good, str(empty), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in result["predictions"]] == [good]
    # LeNet-5's 16 channels over the 4x4 grid and over the whole image (the pyramid's level)
    assert len(result["predictions"][0]["embedding"]) == 16 * (4 * 4 + 1)
    assert [e["file"] for e in result["errors"]] == [str(empty)]


@pytest.mark.slow  # trains
def test_a_folder_trains_with_held_out_classes_and_skips_a_broken_file(tmp_path, capsys):
    from sklearn.datasets import load_digits
    digits = load_digits()
    folder = tmp_path / "faces"
    for name, digit in zip("abcd", range(4)):
        (folder / name).mkdir(parents=True)
        for k, image in enumerate(digits.images[digits.target == digit][:10]):
            _png(folder / name / f"{k}.png", image)
    broken = folder / "a" / "broken.png"
    broken.write_text("not an image")
    run = tmp_path / "run"
    assert main(["train", "--task", "embed", "--dataset", f"folder:{folder}",
                 "--holdout-classes", "d", "--epochs", "1", "--json", "--quiet",
                 "--out", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_images"] == 10  # every image of d, none of a, b, c
    assert str(broken) in (run / "skipped.txt").read_text()
    assert json.loads((run / "config.json").read_text())["classes"] == ["a", "b", "c"]


@pytest.mark.slow  # trains
def test_an_embed_run_resumes_exactly_from_a_mid_epoch_checkpoint(tmp_path):
    config = dataclasses.replace(TrainConfig.for_recipe("embed-digits"), epochs=2,
                                 limit_batches=3)
    assert_resumes_exactly(config, tmp_path, "val_auc")
