"""Looking inside: feature maps, filters, Grad-CAM and receptive fields show what they claim.

Each test checks the content of a picture against an independent computation (the layer
called by hand, the weights themselves, a square whose position is known, autograd's
footprint of one unit), not only that a file appeared.
"""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.look.featuremaps import featuremaps
from cnnlab.look.filters import filters, kernel_grid
from cnnlab.look.gradcam import gradcam
from cnnlab.models import create_model
from cnnlab.figures import symmetric_range, tile_position, unit_range
from cnnlab.look.receptive_field import receptive_field
from cnnlab.runs.folder import load_run


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()  # a complete, decodable PNG
    with Image.open(path) as image:
        return image.size


def _digit_png(path, index: int = 0) -> torch.Tensor:
    from cnnlab.data import load_dataset
    pixels = load_dataset("digits").test.images[index, 0].numpy()
    Image.fromarray(pixels).resize((32, 32), Image.BICUBIC).save(path)
    return torch.from_numpy(np.array(Image.open(path)))[None]


# ----------------------------------------------------------------------------- feature maps

def test_feature_maps_of_a_run_are_its_layers_applied_to_the_preprocessed_image(short_run, tmp_path):
    """The lecture's conv1(X): the first grid's tiles are the first convolution stage's maps
    of the image as the run's own preprocessing prepares it, each scaled to [0, 1]."""
    image = _digit_png(tmp_path / "digit.png")
    result = featuremaps(str(short_run.run_dir), str(tmp_path / "digit.png"),
                         out=str(tmp_path / "maps.png"), device="cpu")
    assert [layer.name for layer in result.layers] == ["features.1", "features.4"]  # conv+act, twice
    run = load_run(short_run.run_dir)
    x = run.spec.preprocess.normalise(run.spec.preprocess.fit_size(image))[None]
    with torch.no_grad():
        expected = run.model.features[1](run.model.features[0](x))[0]  # conv1, then its sigmoid
    first = result.layers[0]
    assert first.shape == [6, 28, 28] and first.channels == list(range(6))
    for i, channel in enumerate(first.channels):
        top, left = tile_position(i, first.columns, (28, 28))
        np.testing.assert_allclose(first.grid[top:top + 28, left:left + 28],
                                   unit_range(expected[channel].numpy()), atol=1e-5)
    assert np.isnan(first.grid[:, 28]).all()  # the gap between tiles is left blank
    width, height = _png_size(tmp_path / "maps.png")
    assert width > 300 and height > 300


def test_more_channels_than_fit_shows_the_strongest_first(short_run, tmp_path):
    _digit_png(tmp_path / "digit.png", 5)
    result = featuremaps(str(short_run.run_dir), str(tmp_path / "digit.png"), layers=["features.3"],
                         channels=4, out=str(tmp_path / "maps.png"), device="cpu")
    run = load_run(short_run.run_dir)
    from cnnlab.look.inspection import Subject
    subject = Subject(run.model, run.spec.preprocess, run.spec.classes, "run", torch.device("cpu"))
    _, x = subject.prepare(_digit_png(tmp_path / "again.png", 5))
    with torch.no_grad():
        maps = run.model.features[:4](x)[0]
    strength = maps.abs().mean(dim=(1, 2))
    assert result.layers[0].channels == strength.argsort(descending=True)[:4].tolist()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: 'works offline' is checked, not hoped."""
    def refuse(*args, **kwargs):
        raise AssertionError("cnnlab tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_featuremaps_of_pretrained_efficientnet_on_a_shipped_photograph_offline(
        no_network, tmp_path, capsys):
    out = tmp_path / "cat.png"
    assert main(["featuremaps", "--pretrained", "efficientnet_lite0", "--sample", "chelsea",
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [layer["layer"] for layer in result["layers"]] == [
        "features.stem", *(f"features.stage{n}" for n in range(2, 9)), "features.conv_head"]
    assert result["layers"][0]["shape"] == [32, 112, 112]  # stride-2 stem on 224x224
    assert result["layers"][-1]["shape"] == [1280, 7, 7]
    assert _png_size(out)[1] > 1000  # ten rows of pictures


# ----------------------------------------------------------------------------- filters

def test_first_layer_kernels_are_drawn_in_colour_from_their_rgb_weights():
    model = create_model("lecture_cnn")
    with torch.no_grad():
        model.features[0].weight.zero_()
        model.features[0].weight[0, 0] = 1.0   # kernel 0 responds to red only
        model.features[0].weight[1, 2, 1, 1] = -1.0  # kernel 1: a dark centre in blue
    result = kernel_grid(model)
    assert result.colour and result.layer == "features.0" and result.rows == 6
    red = result.grid[0:3, 0:3]
    np.testing.assert_allclose(red[..., 0], 1.0)        # strongest positive weight: full red
    np.testing.assert_allclose(red[..., 1:], 0.5)       # zero weight: mid-grey
    top, left = tile_position(1, result.columns, (3, 3))
    blue = result.grid[top:top + 3, left:left + 3]
    assert blue[1, 1, 2] == 0.0 and (blue[1, 1, :2] == 0.5).all()
    assert (blue[0, 0] == 0.5).all()


def test_deeper_kernels_are_grey_one_tile_per_output_input_pair(short_run, tmp_path):
    result = filters(str(short_run.run_dir), layer="features.3", out=str(tmp_path / "k.png"),
                     device="cpu")
    weight = load_run(short_run.run_dir).model.features[3].weight.detach()
    assert not result.colour and result.layout == "pairs" and result.columns == 6
    for out_channel, in_channel in ((0, 0), (7, 5), (15, 2)):
        index = out_channel * 6 + in_channel
        top, left = tile_position(index, 6, (5, 5))
        np.testing.assert_allclose(result.grid[top:top + 5, left:left + 5],
                                   symmetric_range(weight[out_channel, in_channel].numpy()))
    assert _png_size(tmp_path / "k.png")[0] > 100


# ----------------------------------------------------------------------------- Grad-CAM

def _square_picture(rng, size: int, square: bool):
    """Dark noise; with `square`, one white square of a fifth to a third of the side."""
    pixels = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)
    if not square:
        return pixels, None
    side = int(rng.integers(size // 5, size // 3))
    top, left = (int(v) for v in rng.integers(0, size - side, 2))
    pixels[top:top + side, left:left + side] = 255
    return pixels, (top, left, top + side, left + side)


@pytest.fixture(scope="module")
def square_run(tmp_path_factory):
    """lecture_cnn trained for a few seconds to tell a bright square from none."""
    from cnnlab import TrainConfig, train
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for name in ("empty", "square"):
        (root / "data" / name).mkdir(parents=True)
        for i in range(120):
            pixels, _ = _square_picture(rng, 32, name == "square")
            Image.fromarray(pixels).save(root / "data" / name / f"{i}.png")
    return train(TrainConfig(model="lecture_cnn", dataset=f"folder:{root / 'data'}", epochs=4,
                             lr=0.01, label_smoothing=0.0, workers=0, out=str(root / "run")),
                 quiet=True)


def test_gradcam_peaks_inside_the_bright_square(square_run, tmp_path):
    """Test pictures are 64x64, twice the training size: the run's preprocessing halves them,
    so the square's box in model coordinates is half of where it was drawn."""
    assert square_run.test_accuracy > 0.9
    rng = np.random.default_rng(1)
    for k in range(5):
        pixels, (top, left, bottom, right) = _square_picture(rng, 64, True)
        Image.fromarray(pixels).save(tmp_path / f"square{k}.png")
        result = gradcam(str(square_run.run_dir), str(tmp_path / f"square{k}.png"),
                         target="square", out=str(tmp_path / f"cam{k}.png"), device="cpu")
        assert result.class_name == "square" and result.layer == "features.4"
        row, col = result.peak
        assert top // 2 <= row < -(-bottom // 2) and left // 2 <= col < -(-right // 2), (
            result.peak, (top, left, bottom, right))
        inside = result.heatmap[top // 2:bottom // 2, left // 2:right // 2].mean()
        assert inside > 2 * result.heatmap.mean()
        assert result.picture.shape == (32, 32, 3) and _png_size(tmp_path / f"cam{k}.png")


def test_gradcam_cli_explains_the_top_class_by_default(square_run, tmp_path, capsys):
    pixels, _ = _square_picture(np.random.default_rng(2), 32, True)
    Image.fromarray(pixels).save(tmp_path / "s.png")
    assert main(["gradcam", str(square_run.run_dir), str(tmp_path / "s.png"),
                 "--out", str(tmp_path / "cam.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["class"] == "square" and result["probability"] > 0.5


# ----------------------------------------------------------------------------- receptive fields

def _footprint_box(model, layer, shape, unit):
    """Independently: the bounding box of input pixels with a non-zero gradient of the
    layer's output at `unit` (channel 0 only), for one random input."""
    x = torch.randn(1, *shape, requires_grad=True)
    out = model.get_submodule(layer)
    caught = []
    handle = out.register_forward_hook(lambda m, a, o: caught.append(o))
    model.eval()(x)
    handle.remove()
    caught[0][0, 0, unit[0], unit[1]].backward()
    rows, cols = np.nonzero(x.grad[0].abs().sum(0).numpy())
    return rows.min(), cols.min(), rows.max(), cols.max()


@pytest.mark.parametrize("unit", [(5, 5), (0, 0), (9, 3)])
def test_the_drawn_receptive_field_is_the_gradient_footprint_of_the_unit(tmp_path, unit):
    """LeNet-5's conv2: 5x5 on a 2x2 average pool of a 5x5 conv, so rf 14, jump 2, and start
    4.5 after padding 2 (004's arithmetic); sigmoid and average pooling hide no pixel."""
    torch.manual_seed(0)
    result = receptive_field("lenet5", "features.3", unit=f"{unit[0]},{unit[1]}",
                             out=str(tmp_path / "rf.png"))
    centre = 4.5 + 2 * np.array(unit)
    assert result.window == (int(centre[0] - 6.5), int(centre[1] - 6.5),
                             int(centre[0] + 6.5), int(centre[1] + 6.5))
    model = create_model("lenet5")
    assert result.window_inside == _footprint_box(model, "features.3", (1, 28, 28), unit)
    assert result.agrees and result.footprint_box == result.window_inside
    tinted = (result.picture != 0.85).any(axis=-1)  # the picture marks exactly the footprint
    assert (tinted == result.footprint).all()
    assert _png_size(tmp_path / "rf.png")


def test_receptive_field_through_relu_and_max_pooling_still_matches(tmp_path, capsys):
    """lecture_cnn (ReLU, 2x2 max pools): any one input hides pixels, the union does not."""
    assert main(["receptive-field", "lecture_cnn", "--layer", "features.5", "--unit", "0,7",
                 "--sample", "astronaut", "--out", str(tmp_path / "rf.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rf"] == [10, 10] and result["jump"] == [4, 4]
    assert result["window"] == [-3, 25, 6, 34]
    assert result["gradient_footprint"] == result["window_inside_image"] == [0, 25, 6, 31]
    assert result["agrees"]


# ----------------------------------------------------------------------------- mistakes

@pytest.mark.parametrize("argv, message", [
    (["featuremaps", "RUN"], "give an image file or --sample NAME"),
    (["featuremaps", "RUN", "IMG", "--layer", "head.1"], "not feature maps"),
    (["featuremaps", "RUN", "IMG", "--layer", "nope"], "has no layer 'nope'"),
    (["filters", "RUN", "--layer", "features.1"], "is a Sigmoid, not a convolution"),
    (["filters", "RUN", "--out", "kernels.txt"], "must end in one of"),
    (["gradcam", "RUN", "IMG", "--class", "11"], "number from 0 to 9"),
    (["gradcam", "RUN", "IMG", "--out", "/no/such/folder/cam.png"], "does not exist"),
    (["gradcam", "--pretrained", "efficientnet_lite0", "IMG", "IMG"], "give one image"),
    (["receptive-field", "lenet5", "--layer", "head.1"], "gives no feature map"),
    (["receptive-field", "lenet5", "--layer", "features.3", "--unit", "10,0"], "outside"),
    (["report", "RUN", "--out", "report.pdf"], "ending in .html"),
])
def test_user_mistakes_get_one_sentence_and_exit_status_2(short_run, tmp_path, capsys, argv, message):
    _digit_png(tmp_path / "digit.png")
    argv = [str(short_run.run_dir) if a == "RUN" else str(tmp_path / "digit.png") if a == "IMG"
            else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
