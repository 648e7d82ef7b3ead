"""Semantic segmentation as a user meets it: train on shapes' masks, evaluate, predict masks
for image files; and the parts that must be exactly right: the confusion matrix and mIoU,
masks that move with their images, and a run that records its task."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image
from sklearn.metrics import confusion_matrix

from cnnlab.cli.main import main
from cnnlab.data.augment import preset
from cnnlab.data.catalog import Split
from cnnlab.data.memory import TensorBatches
from cnnlab.data.pipeline import StreamDataset
from cnnlab.data.transforms import Preprocess
from cnnlab.data.shapes import generate_shapes
from cnnlab.tasks.segment import IGNORE, Segment, confusion, scores

SMOKE = ["--task", "segment", "--model", "unet", "--dataset", "shapes", "--epochs", "1",
         "--limit-batches", "3", "--batch-size", "16", "--model-kwargs", "width=4", "depth=2"]


def test_the_confusion_matrix_and_miou_equal_a_reference_on_random_predictions():
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 4, (3, 16, 16), generator=g)
    truth[0, :4] = IGNORE  # ignored pixels count nowhere
    predicted = torch.randint(0, 4, (3, 16, 16), generator=g)
    ours = confusion(predicted, truth, 4).numpy()
    keep = (truth != IGNORE).flatten().numpy()
    reference = confusion_matrix(truth.flatten().numpy()[keep], predicted.flatten().numpy()[keep],
                                 labels=range(4))
    np.testing.assert_array_equal(ours, reference)
    iou = np.diag(reference) / (reference.sum(0) + reference.sum(1) - np.diag(reference))
    found = scores(ours)
    assert found["miou"] == pytest.approx(iou.mean())
    assert found["pixel_accuracy"] == pytest.approx(np.trace(reference) / reference.sum())


def test_a_class_absent_from_truth_and_prediction_does_not_count_in_the_mean():
    matrix = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    found = scores(matrix)
    assert found["iou"][2] is None
    assert found["miou"] == pytest.approx(np.mean([5 / 8, 4 / 7]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), preset_name=st.sampled_from(["flip-crop", "strong"]))
def test_every_augmentation_keeps_image_and_mask_aligned(seed, preset_name):
    """The masks are drawn from the images (the shape's pixels have its flat colour), so after
    any flip and shift the mask must still mark exactly the pixels of that colour."""
    data = generate_shapes(8, 32, seed=seed)
    in_memory = TensorBatches(data.images, data.class_masks, 8, shuffle=True, seed=seed,
                              augment=preset(preset_name))
    # The streaming path: one pair at a time through transforms v2 (Image and Mask together),
    # pixel values kept as they are; cutout (the image only, after normalising) left out.
    torch.manual_seed(seed)
    plain = Preprocess(3, (32, 32), (0.0,) * 3, (1 / 255,) * 3)
    moves = dataclasses.replace(preset(preset_name), cutout_fraction=0.0)
    streamed = StreamDataset(Split(data.images, data.class_masks), plain, moves)
    pairs = [pair for images, masks in in_memory for pair in zip(images, masks)]
    pairs += [streamed[i] for i in range(len(streamed))]
    assert len(pairs) == 16
    for image, mask in pairs:
        image, shape = image.round(), mask > 0
        colour = image[:, shape][:, 0]
        same = (image == colour[:, None, None]).all(dim=0)
        assert torch.equal(same & shape, shape)  # every mask pixel has the shape's colour
        assert int(same.sum()) <= int(shape.sum()) + 2  # and hardly any other pixel does


def test_train_evaluate_and_predict_a_segmentation_run(tmp_path, capsys):
    run = tmp_path / "seg"
    assert main(["train", *SMOKE, "--out", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["test_miou"] <= 1 and 0 <= result["test_pixel_accuracy"] <= 1
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"train_miou", "train_pixel_accuracy", "val_miou", "val_pixel_accuracy"} <= set(metrics)
    assert json.loads((run / "config.json").read_text())["train"]["task"] == "segment"

    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "segment"
    # (training's test pass was cut to --limit-batches; evaluate sees the whole split)
    assert report["miou"] == pytest.approx(scores(report["confusion_matrix"])["miou"])
    assert report["images"] == 800
    assert [c["class"] for c in report["per_class"]] == ["background", "circle", "square",
                                                         "triangle"]
    assert sum(c["pixels"] for c in report["per_class"]) == report["images"] * 32 * 32
    assert (run / "worst_masks.png").stat().st_size > 5000

    data = generate_shapes(2, 40, seed=3)
    files = []
    for i, image in enumerate(data.images):
        files.append(tmp_path / f"img{i}.png")
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(files[-1])
    out = tmp_path / "masks"
    assert main(["predict", str(run), *map(str, files), "--out-dir", str(out), "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["file"] for p in predictions] == [str(f) for f in files]
    for item in predictions:
        mask = np.asarray(Image.open(item["mask"]))
        assert mask.shape == (40, 40) and mask.max() <= 3  # class indices, at the image's size
        assert Image.open(item["overlay"]).size == (40, 40)
        assert sum(item["class_fractions"].values()) == pytest.approx(1)
        assert item["class_fractions"]["background"] == pytest.approx((mask == 0).mean())

    assert main(["report", str(run), "--json"]) == 0
    page = (run / "report.html").read_text()
    assert json.loads(capsys.readouterr().out)["miou"] == pytest.approx(report["miou"])
    for part in ('id="evaluation"', 'id="worst-images"', 'id="featuremaps"', "mean IoU"):
        assert part in page


def test_wrong_pairings_of_task_model_and_data_are_one_sentence(tmp_path, capsys):
    assert main(["train", "--task", "segment", "--model", "lenet5", "--out",
                 str(tmp_path / "a")]) == 2
    assert "lenet5 is made for --task classify" in capsys.readouterr().err
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", "digits",
                 "--out", str(tmp_path / "b")]) == 2
    assert "digits has no masks" in capsys.readouterr().err
    assert main(["train", "--model", "unet", "--out", str(tmp_path / "c")]) == 2
    assert "unet is made for --task segment" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def test_the_segment_task_learns_from_shapes_masks_not_labels():
    from cnnlab.data import load_dataset
    splits = Segment().targets(load_dataset("shapes"))
    assert splits.classes == ["background", "circle", "square", "triangle"]
    assert splits.train.labels.shape == splits.train.images.shape[:1] + (32, 32)
    assert set(splits.train.labels.unique().tolist()) == {0, 1, 2, 3}


def test_the_dice_loss_is_zero_for_a_perfect_answer_and_ignores_ignored_pixels():
    from cnnlab.tasks.segment import dice_loss
    masks = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    perfect = torch.nn.functional.one_hot(masks, 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(perfect, masks)) == pytest.approx(0, abs=1e-6)
    wrong_where_ignored = perfect.clone()
    wrong_where_ignored[:, :, :4] = perfect[:, :, :4].roll(1, dims=1)
    ignored = masks.clone()
    ignored[:, :4] = IGNORE
    assert float(dice_loss(wrong_where_ignored, ignored)) == pytest.approx(0, abs=1e-6)
    assert float(dice_loss(wrong_where_ignored, masks)) > 0.3
    loss, _ = Segment(dice=1.0).loss(wrong_where_ignored, masks)
    assert float(loss) > float(Segment().loss(wrong_where_ignored, masks)[0])


def test_each_images_miou_equals_the_one_of_its_own_confusion_matrix():
    from cnnlab.tasks.segment import confusions, image_mious
    g = torch.Generator().manual_seed(2)
    truth, predicted = torch.randint(0, 3, (4, 8, 8), generator=g), torch.randint(0, 3, (4, 8, 8), generator=g)
    truth[1] = 0  # an image with one class only: the absent ones do not count
    matrices = confusions(predicted, truth, 3)
    assert torch.equal(matrices.sum(0), confusion(predicted, truth, 3))
    for matrix, miou in zip(matrices, image_mious(matrices)):
        assert float(miou) == pytest.approx(scores(matrix.numpy())["miou"])


def test_a_segmentation_set_streams_one_pair_at_a_time(tmp_path, caplog):
    with caplog.at_level("INFO", logger="cnnlab"):
        assert main(["train", *SMOKE, "--data-loading", "stream", "--workers", "0",
                     "--out", str(tmp_path / "streamed")]) == 0
    told = "\n".join(r.getMessage() for r in caplog.records if r.name == "cnnlab")
    assert "augment flip-crop, streamed" in told and "test miou" in told


def test_gradcam_explains_the_region_a_segmenter_paints_a_class(tmp_path, capsys):
    run = tmp_path / "seg"
    assert main(["train", *SMOKE, "--out", str(run)]) == 0
    image = tmp_path / "shape.png"
    data = generate_shapes(1, 32, seed=3)
    Image.fromarray(data.images[0].permute(1, 2, 0).numpy()).save(image)
    capsys.readouterr()
    assert main(["gradcam", str(run), str(image), "--class", "background",
                 "--out", str(tmp_path / "cam.png"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["layer"] == "bottom"  # U-Net's deepest maps by default
    assert found["class"] == "background" and (tmp_path / "cam.png").is_file()
    assert 0 < found["region_pixels"] <= 32 * 32
    assert main(["gradcam", str(run), str(image), "--class", "pentagon"]) == 2
