"""DCGAN (`--task gan`): the two-network step, exact resume, the Fréchet distance, the
generator's sizes, and the run as a user drives it from the command line."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.models import create_model
from cnnlab.models.dcgan import SIZES
from cnnlab.runs.resume import checkpoints
from cnnlab.tasks.frechet import Moments, distance, frechet_distance
from cnnlab.tasks.gan import gan_step, side_for

TRAIN = ["train", "--task", "gan", "--model", "dcgan", "--dataset", "digits", "--epochs", "2",
         "--limit-batches", "3", "--batch-size", "16", "--checkpoint-every", "1", "--keep",
         "100", "--deterministic", "--quiet"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """One short GAN run on digits (2 epochs of 3 steps, a checkpoint after every step) and
    what `train --json` printed."""
    out = tmp_path_factory.mktemp("gan") / "run"
    capture = pytest.MonkeyPatch()
    lines = []
    capture.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
    try:
        assert main([*TRAIN, "--out", str(out), "--json"]) == 0
    finally:
        capture.undo()
        torch.use_deterministic_algorithms(False)  # --deterministic must not leak into other tests
    return out, json.loads(lines[-1])


@pytest.mark.parametrize("side", SIZES[:4])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_generator_makes_images_of_each_size_and_the_discriminator_scores_them(side, channels):
    model = create_model("dcgan", num_classes=10, in_channels=channels, image_size=side, width=8)
    outputs = model(torch.randn(5, channels, side, side))
    assert outputs.fake.shape == (5, channels, side, side)
    assert outputs.real_logits.shape == outputs.fake_logits.shape == (5,)
    assert outputs.fake.abs().max() <= 1  # tanh: the pipeline's [-1, 1]


def test_a_side_that_is_not_4_times_a_power_of_two_is_a_user_error():
    from cnnlab import UserError
    with pytest.raises(UserError, match="image_size=28 is none of them"):
        create_model("dcgan", image_size=28)


@pytest.mark.parametrize("data, side", [((8, 8), 8), ((28, 28), 32), ((64, 64), 64),
                                        ((32, 32), 32), ((375, 500), 64)])
def test_the_chosen_side_is_the_power_of_two_at_or_above_the_images(data, side):
    assert side_for(data) == side


def test_the_paper_initialisation():
    model = create_model("dcgan", in_channels=1, image_size=32)
    convs = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                 torch.nn.ConvTranspose2d))]
    weights = torch.cat([w.flatten() for w in convs])
    assert weights.mean().abs() < 1e-3 and abs(weights.std() - 0.02) < 1e-3
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    scales = torch.cat([m.weight.flatten() for m in norms])
    assert abs(scales.mean() - 1) < 0.01 and abs(scales.std() - 0.02) < 0.01
    assert all(m.bias.abs().max() == 0 for m in norms)
    # batch norm everywhere but the generator's output layer and the discriminator's input
    assert [type(m).__name__ for m in model.generator.net[-2:]] == ["ConvTranspose2d", "Tanh"]
    assert [type(m).__name__ for m in model.discriminator.features[:2]] == ["Conv2d", "LeakyReLU"]
    assert len([m for m in model.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == 3
    assert len([m for m in model.discriminator.modules()
                if isinstance(m, torch.nn.BatchNorm2d)]) == 2


def test_one_step_updates_both_networks():
    torch.manual_seed(0)
    model = create_model("dcgan", in_channels=1, image_size=8, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gan_step(model, torch.rand(8, 1, 8, 8) * 2 - 1, optimizer)
    after = model.state_dict()
    for net in ("generator", "discriminator"):
        weights = [k for k in before if k.startswith(net) and k.endswith("weight")]
        assert weights and all(not torch.equal(before[k], after[k]) for k in weights), net
    assert torch.equal(before["fixed_noise"], after["fixed_noise"])


def test_one_adam_over_both_networks_is_two_adams_bit_for_bit():
    """The paper's two optimisers (as PyTorch's DCGAN example writes them) against cnnlab's
    one Adam whose updates each have one network's gradients."""
    def reference_step(model, real, opt_d, opt_g):
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        fake = model.generator(model.noise(len(real)))
        real_logits, fake_logits = model.discriminator(real), model.discriminator(fake.detach())
        d_loss = (bce(real_logits, torch.ones_like(real_logits))
                  + bce(fake_logits, torch.zeros_like(fake_logits)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_logits = model.discriminator(fake)
        opt_g.zero_grad()
        bce(g_logits, torch.ones_like(g_logits)).backward()
        opt_g.step()

    torch.manual_seed(1)
    ours = create_model("dcgan", in_channels=1, image_size=16, width=8)
    theirs = create_model("dcgan", in_channels=1, image_size=16, width=8)
    theirs.load_state_dict(ours.state_dict())
    one = torch.optim.Adam(ours.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(theirs.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(theirs.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    reals = torch.rand(3, 8, 1, 16, 16) * 2 - 1
    for seed, real in enumerate(reals):
        torch.manual_seed(seed)
        gan_step(ours, real, one)
        torch.manual_seed(seed)
        reference_step(theirs, real, opt_d, opt_g)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key


def test_the_frechet_distance_of_gaussians_against_a_hand_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(5.25, rel=1e-6)
    # diagonal covariances: the trace term is sum (sqrt(a) - sqrt(b))^2
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2) + 3.0 ** 2
    assert frechet_distance(np.zeros(3), np.diag(var1), np.array([3.0, 0, 0]),
                            np.diag(var2)) == pytest.approx(expected, rel=1e-6)


def test_the_running_moments_give_numpys_mean_and_covariance():
    features = torch.randn(300, 6, dtype=torch.float64) * torch.arange(1, 7) + 2
    moments = Moments()
    for chunk in features.split(64):
        moments.add(chunk)
    mean, cov = moments.mean_cov()
    assert np.allclose(mean, features.numpy().mean(0))
    assert np.allclose(cov, np.cov(features.numpy(), rowvar=False))
    same, shifted = Moments(), Moments()
    same.add(features)
    shifted.add(features + 3)
    assert distance(moments, same) == pytest.approx(0, abs=1e-6)
    assert distance(moments, shifted) == pytest.approx(6 * 9, rel=1e-6)


def test_train_json_reports_the_frechet_distance_and_the_recognised_share(gan_run):
    run, result = gan_run
    assert result["test_frechet_distance"] > 0 and 0 <= result["test_recognised"] <= 1
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in history] == [1, 2]
    assert all("val_frechet_distance" in m and "val_recognised" in m for m in history)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "epoch_001.png", "epoch_002.png", "samples.gif"]
    assert (run / "judge" / "model.safetensors").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["recipe"] == "dcgan" and config["train"]["lr"] == 2e-4
    assert config["model"]["kwargs"]["image_size"] == 8
    assert config["preprocess"]["mean"] == [0.5] and config["preprocess"]["std"] == [0.5]


def test_a_run_stopped_mid_epoch_resumes_to_bit_identical_weights(gan_run, tmp_path):
    """The newest checkpoint is one step into epoch 2, as if the run had been killed there;
    the resumed run loads its judge instead of training it and must not notice."""
    straight, _ = gan_run
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    (run / "model.safetensors").unlink()
    for path in checkpoints(run):
        if path.name > "epoch-0002-step-000001.safetensors":
            path.unlink()
    try:
        assert main(["train", "--resume", str(run), "--quiet"]) == 0
    finally:
        torch.use_deterministic_algorithms(False)
    assert (run / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
    timeless = lambda folder: [  # noqa: E731 -- every number but the clock's
        {k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_second")}
        for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert timeless(run) == timeless(straight) and len(timeless(run)) == 2
    assert (run / "samples" / "epoch_002.png").read_bytes() == \
        (straight / "samples" / "epoch_002.png").read_bytes()


def test_evaluate_draws_the_same_noise_every_time(gan_run, capsys):
    run, _ = gan_run
    reports = []
    for _ in range(2):
        assert main(["evaluate", str(run), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    report = reports[0]
    assert report == reports[1]  # the evaluation noise is fixed, the global generator unused
    assert report["images"] == 360 and report["frechet_distance"] > 0  # the whole test split
    assert sum(c["share"] for c in report["generated_classes"]) == pytest.approx(1)
    assert all((run / name).is_file() for name in ("generated.png", "generated_classes.png"))


def test_predict_without_images_draws_new_ones(gan_run, tmp_path, capsys):
    run, _ = gan_run
    out = tmp_path / "made"
    assert main(["predict", str(run), "--count", "5", "--out-dir", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["predictions"]) == 5 and (out / "grid.png").is_file()
    from PIL import Image
    with Image.open(result["predictions"][0]["file"]) as image:
        assert image.size == (8, 8) and image.mode == "L"


def test_the_report_shows_the_samples_and_the_distance_per_epoch(gan_run, tmp_path):
    run, _ = gan_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out), "--quiet"]) == 0
    page = out.read_text()
    assert "Samples over the epochs" in page and "Fréchet distance per epoch" in page


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet18"], "model resnet18 is made for --task classify, not gan"),
    (["--dataset", "digits", "--pretrained", "efficientnet_lite0"], "drop --pretrained"),
])
def test_user_mistakes_are_one_sentence_and_status_2(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "gan", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    # the last line is the error; before it at most the line naming the task's recipe
    *before, last = err.strip().splitlines()
    assert message in last and last.startswith("cnnlab: error:") and "Traceback" not in err
    assert len(before) <= 1 and all("starts from the dcgan recipe" in line for line in before)


def test_predict_without_images_is_still_an_error_for_a_classifier(short_run, capsys):
    assert main(["predict", str(short_run.run_dir)]) == 2
    assert "give one or more image files" in capsys.readouterr().err
