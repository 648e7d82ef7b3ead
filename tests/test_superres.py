"""Super-resolution as a user meets it: the upscalers give images exactly `scale` times larger,
PSNR and SSIM equal scikit-image's, whole photographs are held out for testing, and a run
trains, evaluates, predicts and resumes with the usual run folder and --json."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cnnlab import TrainConfig, create_model
from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data import photo_patches
from cnnlab.models.superres import bicubic
from cnnlab.tasks import image_quality as quality
from cnnlab.tasks.superres import Quality, pairs

from resume_check import assert_resumes_exactly

SMOKE = ["--task", "superres", "--dataset", "photos", "--epochs", "1", "--limit-batches", "2",
         "--batch-size", "8", "--quiet"]


@pytest.mark.parametrize("name", ["espcn", "srcnn", "fsrcnn"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upscalers_give_scale_times_larger_images_and_start_as_bicubic(name, scale):
    x = torch.rand(2, 1, 10, 13)
    model = create_model(name, scale=scale).eval()
    with torch.no_grad():
        assert model(x).shape == (2, 1, 10 * scale, 13 * scale)
        # the bicubic skip with a zero last layer: untrained, the model is bicubic exactly
        assert torch.equal(model(x), bicubic(x, scale))
        plain = create_model(name, scale=scale, residual=False).eval()
        assert plain(x).shape == (2, 1, 10 * scale, 13 * scale)
        assert not torch.allclose(plain(x), bicubic(x, scale), atol=1e-3)


def test_espcns_sub_pixel_layer_fills_each_block_from_scale_squared_maps():
    model = create_model("espcn", scale=3)
    conv, shuffle = model.head
    assert conv.out_channels == 9 and shuffle.upscale_factor == 3
    maps = torch.arange(9.0).view(1, 9, 1, 1)  # one low-resolution pixel, nine maps
    assert shuffle(maps)[0, 0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def _photo_pairs(seed: int):
    """A photograph's luminance and a degraded copy (noise, then blur): what PSNR and SSIM
    are for."""
    import skimage.data
    rng = np.random.default_rng(seed)
    y = np.round(rgb2ycbcr(skimage.data.astronaut()[100:228, 180:340])[..., 0]).astype(np.uint8)
    noisy = np.clip(y + rng.normal(0, 4 + 6 * seed, y.shape), 0, 255)
    blurred = torch.from_numpy(noisy)[None, None].float()
    blurred = torch.nn.functional.avg_pool2d(blurred, 3, 1, 1, count_include_pad=False)
    return y, np.round(blurred[0, 0].numpy()).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_and_ssim_equal_scikit_images(seed):
    truth, guess = _photo_pairs(seed)
    a, b = torch.from_numpy(truth), torch.from_numpy(guess)
    assert quality.psnr(a, b) == pytest.approx(
        peak_signal_noise_ratio(truth, guess, data_range=255), abs=1e-6)
    skimage_ssim = structural_similarity(truth, guess, data_range=255, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
    assert quality.ssim(a, b) == pytest.approx(skimage_ssim, abs=1e-6)
    assert 0.3 < skimage_ssim < 0.999  # a real difference, not two equal images
    # batched, per image, as the task measures them
    batch = quality.ssims(torch.stack([b[None], a[None]]), torch.stack([a[None], a[None]]))
    assert batch.tolist() == pytest.approx([skimage_ssim, 1.0], abs=1e-6)


def test_luminance_is_bt601_as_scikit_image_computes_it():
    import skimage.data
    photo = skimage.data.coffee()
    ours = quality.luminance(torch.from_numpy(photo).permute(2, 0, 1))[0].numpy()
    assert np.abs(ours.astype(float) - rgb2ycbcr(photo)[..., 0]).max() <= 0.5 + 1e-4  # rounded
    back = quality.rgb(quality.ycbcr(torch.from_numpy(photo).permute(2, 0, 1)))
    assert (back - torch.from_numpy(photo).permute(2, 0, 1)).abs().max() < 1e-3


def test_the_task_measures_bicubic_beside_the_model_with_the_border_cropped():
    import skimage.data
    photo = torch.from_numpy(skimage.data.astronaut()[100:228, 180:340]).permute(2, 0, 1)[None]
    low, target = pairs(photo, 2)
    assert low.shape == (1, 1, 64, 80) and torch.equal(target, quality.luminance(photo))
    assert [t.shape[-2:] for t in pairs(photo[..., :127, :161], 3)] == [(42, 53), (126, 159)]
    tally = Quality(2)
    smooth = bicubic(low.float() / 255, 2)
    tally.add(low.float() / 255, smooth, target)  # a "model" that is bicubic itself
    result = tally.result()
    assert result.psnr == result.bicubic_psnr and result.ssim == result.bicubic_ssim
    cropped = lambda t: t[..., 2:-2, 2:-2]  # noqa: E731
    expected = peak_signal_noise_ratio(
        cropped(target[0, 0]).numpy(),
        cropped(quality.quantised(smooth)[0, 0]).numpy().astype(np.uint8), data_range=255)
    assert result.psnr == pytest.approx(expected, abs=1e-9)
    tally = Quality(2)
    tally.add(low.float() / 255, target.float() / 255, target)  # a perfect upscaler
    assert tally.result().psnr == float("inf") and tally.result().ssim == pytest.approx(1.0)


def test_whole_photographs_are_held_out_for_testing():
    splits = load_dataset("photos")
    assert not set(photo_patches.TRAIN_PHOTOS) & set(photo_patches.TEST_PHOTOS)
    held_out = photo_patches.tiles(list(map(photo_patches._bundled, photo_patches.TEST_PHOTOS)))
    assert torch.equal(splits.test.images, held_out)
    patches = photo_patches.random_patches(
        list(map(photo_patches._bundled, photo_patches.TRAIN_PHOTOS)), photo_patches.TRAIN_PATCHES)
    as_bytes = lambda images: sorted(bytes(t.numpy()) for t in images)  # noqa: E731
    assert as_bytes(torch.cat([splits.train.images, splits.val.images])) == as_bytes(patches)
    assert torch.equal(load_dataset("photos").train.images, splits.train.images)  # seeded


def test_a_users_folder_holds_out_whole_photographs(tmp_path):
    import skimage.data
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]
    for i, name in enumerate(names):
        photo = getattr(skimage.data, name)()[:120, :150].copy()
        photo[..., 2] = 40 * i  # the blue channel tells which photograph a patch is from
        Image.fromarray(photo).save(tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    splits = load_dataset(f"photos:{tmp_path}")
    assert [file for file, _ in splits.problems] == [str(tmp_path / "notes.txt")]
    assert len(splits.test) == (120 // 48) * (150 // 48)  # one photograph of five, whole
    source = lambda part: set(part.images[:, 2].flatten().tolist())  # noqa: E731
    held = source(splits.test)
    assert len(held) == 1 and not held & (source(splits.train) | source(splits.val))
    assert len(source(splits.train)) == 4


def test_train_evaluate_and_predict_a_superres_run(tmp_path, capsys):
    run = tmp_path / "sr"
    assert main(["train", *SMOKE, "--model", "espcn", "--scale", "3", "--out", str(run),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"test_psnr", "test_ssim", "test_bicubic_psnr", "test_bicubic_ssim"} <= result.keys()
    assert 20 < result["test_bicubic_psnr"] < 40 and 0 < result["test_ssim"] <= 1
    spec = json.loads((run / "config.json").read_text())
    assert spec["train"]["scale"] == 3 and spec["model"]["kwargs"]["scale"] == 3

    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gain_db"] == pytest.approx(report["psnr"] - report["bicubic_psnr"])
    assert report["images"] == len(load_dataset("photos").test)
    assert Image.open(report["pictures"][0]).size[0] > 100

    colour, grey = tmp_path / "colour.png", tmp_path / "grey.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 41, 3), np.uint8)).save(colour)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 25), np.uint8)).save(grey)
    assert main(["predict", str(run), str(colour), str(grey), "--out-dir",
                 str(tmp_path / "out"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["predictions"]
    upscaled = [Image.open(p["upscaled"]) for p in found]
    assert [(u.size, u.mode) for u in upscaled] == [((123, 90), "RGB"), ((75, 60), "L")]
    assert all(Image.open(p["sheet"]).size[0] > 100 for p in found)


def test_predict_upscales_a_big_image_in_tiles_without_seams(monkeypatch):
    from cnnlab.tasks import superres_report
    model = create_model("espcn", scale=2).eval()
    torch.nn.init.normal_(model.head[0].weight, std=0.05)  # not bicubic: a real network
    y = torch.rand(1, 1, 37, 50)
    whole = superres_report.upscale(model, y, 2)
    monkeypatch.setattr(superres_report, "TILE", 16)
    assert torch.allclose(superres_report.upscale(model, y, 2), whole, atol=1e-5)


def test_a_superres_run_resumes_exactly_from_a_mid_epoch_checkpoint(tmp_path):
    assert_resumes_exactly(TrainConfig(task="superres", model="espcn", dataset="photos",
                                       epochs=2, limit_batches=2, batch_size=8), tmp_path,
                           "val_psnr")


@pytest.mark.parametrize("argv, message", [
    (["--model", "espcn", "--scale", "5"], "--scale must be 2, 3 or 4, not 5"),
    (["--model", "lenet5"], "made for --task classify"),
    (["--model", "espcn", "--augment", "flip-crop"], "without its target"),
    (["--model", "espcn", "--dataset", "folder:FOLDER"], "not one of photographs in memory"),
])
def test_user_errors_are_one_sentence(argv, message, tmp_path, capsys):
    (tmp_path / "folder" / "cats").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((16, 16), i, np.uint8)).save(tmp_path / "folder" / "cats" / f"{i}.png")
    argv = [a.replace("FOLDER", str(tmp_path / "folder")) for a in argv]
    assert main(["train", *SMOKE, *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

