"""Pictures: cnnlab leaves matplotlib's backend to its user, mosaics put every tile where
tile_position says, feature maps are the same whether traced by torch.fx or caught by hooks."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from cnnlab.errors import UserError
from cnnlab.figures import mosaic, save_figure, tile_position
from cnnlab.look.featuremaps import layer_outputs, traced_outputs
from cnnlab.models import create_model

# Run in a fresh interpreter: the question is what importing cnnlab does to matplotlib, and
# this test process has imported cnnlab long before.
EVERY_FIGURE = """
import json, sys
from pathlib import Path
import matplotlib
matplotlib.use("svg")
import numpy as np, torch

from cnnlab.course.kernels import kernel_lab
from cnnlab.look import featuremaps, filters, gradcam
from cnnlab.look.receptive_field import receptive_field
from cnnlab.models import create_model
from cnnlab.tasks import classify_figures
from cnnlab.tasks.diagnostics import Mistake
from cnnlab.training.curves import plot_curves
from cnnlab.figures import save_figure
imported_pyplot = "matplotlib.pyplot" in sys.modules

out = Path(sys.argv[1])
epoch = dict(train_loss=1.0, val_loss=1.1, train_accuracy=0.5, val_accuracy=0.4)
plot_curves([dict(epoch=1, **epoch), dict(epoch=2, **epoch)], out / "curves.png")
classify_figures.plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], out / "confusion.png")
rows = [dict(precision=0.5, recall=0.6, f1=0.55, support=3, **{"class": c}) for c in "ab"]
save_figure(classify_figures.per_class_figure(rows), out / "per_class.png")
mistake = Mistake(0, 0, 1, 2.0, 0.9, torch.zeros(3, 8, 8, dtype=torch.uint8))
save_figure(classify_figures.top_losses_figure([mistake], ["a", "b"]), out / "losses.png")
bins = dict(edges=[0, 0.5, 1], accuracy=[0.2, None], counts=[3, 0], ece=0.1)
save_figure(classify_figures.reliability_figure(bins), out / "reliability.png")
grid = featuremaps.layer_grid("conv", torch.rand(6, 8, 8), 16)
save_figure(featuremaps.draw(np.zeros((8, 8, 3)), [grid], "maps"), out / "maps.png")
save_figure(filters.draw(filters.kernel_grid(create_model("lecture_cnn"))), out / "kernels.png")
heat = np.zeros((8, 8))
cam = gradcam.GradCam(None, "x.png", "m", "conv", 0, "a", 0.9, heat, np.zeros((8, 8, 3)))
save_figure(gradcam.draw(cam, np.zeros((8, 8, 3))), out / "cam.png")
receptive_field("lenet5", "features.3", out=str(out / "rf.png"))
kernel_lab(sample="camera", kernel="sobel-x", out=str(out / "kernel.png"))

import matplotlib.pyplot as plt
print(json.dumps({"backend": matplotlib.get_backend(), "imported_pyplot": imported_pyplot,
                  "open_figures": plt.get_fignums()}))
"""


def test_cnnlab_never_switches_the_backend_or_leaves_pyplot_figures_open(tmp_path):
    done = subprocess.run([sys.executable, "-c", EVERY_FIGURE, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state == {"backend": "svg", "imported_pyplot": False, "open_figures": []}
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(["curves.png", "confusion.png", "per_class.png", "losses.png",
                              "reliability.png", "maps.png", "kernels.png", "cam.png", "rf.png",
                              "kernel.png"])  # and no temporary left from an atomic write
    for name in written:
        with Image.open(tmp_path / name) as image:
            image.verify()


# ----------------------------------------------------------------------------- mosaics

@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 3)])
def test_mosaic_puts_tile_i_at_tile_position_with_fill_between(shape):
    rng = np.random.default_rng(0)
    tiles = [rng.random(shape) for _ in range(7)]
    grid = mosaic(tiles, 3, gap=2, fill=np.nan)
    assert grid.shape == (3 * 3 + 2 * 2, 3 * 4 + 2 * 2, *shape[2:])  # no frame around the grid
    covered = np.zeros(grid.shape[:2], dtype=bool)
    for i, tile in enumerate(tiles):
        top, left = tile_position(i, 3, shape, gap=2)
        np.testing.assert_array_equal(grid[top:top + 3, left:left + 4], tile)
        covered[top:top + 3, left:left + 4] = True
    assert np.isnan(grid[~covered]).all()  # the gaps and the two empty places of the last row


def test_a_mosaic_of_one_tile_is_the_tile():
    tile = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(mosaic([tile], 1), tile)


# ----------------------------------------------------------------------------- saving

def test_save_figure_refuses_an_unknown_format_and_a_missing_folder(tmp_path):
    with pytest.raises(UserError, match=r"cannot save a picture as \.txt: .*must end in one of"):
        save_figure(Figure(), tmp_path / "plot.txt")
    with pytest.raises(UserError, match="the folder .* does not exist"):
        save_figure(Figure(), tmp_path / "missing" / "plot.png")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- feature maps

class _Branchy(nn.Module):
    """A Python `if` on a tensor's value: torch.fx cannot trace it, hooks have to be used."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.act(self.conv(x))
        return y if y.sum() > 0 else -y


def test_traced_maps_are_the_layers_outputs():
    torch.manual_seed(0)
    model, x = create_model("lecture_cnn").eval(), torch.randn(1, 3, 32, 32)
    traced = traced_outputs(model, x, ["features.1", "features.4"])
    assert traced is not None
    with torch.no_grad():
        first = model.features[:2](x)
        expected = {"features.1": first[0], "features.4": model.features[2:5](first)[0]}
    maps = layer_outputs(model, x, ["features.1", "features.4"])
    for name, value in expected.items():
        torch.testing.assert_close(maps[name], value)


def test_a_model_that_does_not_trace_gives_its_maps_through_hooks():
    torch.manual_seed(0)
    model, x = _Branchy().eval(), torch.randn(1, 1, 6, 6)
    assert traced_outputs(model, x, ["act"]) is None
    with torch.no_grad():
        expected = model.act(model.conv(x))[0]
    torch.testing.assert_close(layer_outputs(model, x, ["act"])["act"], expected)
    with pytest.raises(UserError, match="'unused' does not run"):
        layer_outputs(model, x, ["unused"])
    with pytest.raises(UserError, match="has no layer 'nope'"):
        layer_outputs(model, x, ["nope"])


class _Spare(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.spare = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.conv(x)


def test_a_layer_that_never_runs_in_a_traced_model_is_named():
    with pytest.raises(UserError, match="'spare' does not run"):
        layer_outputs(_Spare(), torch.randn(1, 1, 5, 5), ["spare"])


def test_class_names_the_font_lacks_give_one_sentence_not_a_warning_per_glyph(tmp_path, caplog):
    import warnings
    fig = Figure()
    fig.add_subplot().set_title("猫 犬 猫 cat")  # class names of a user's own folders
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any matplotlib warning left would fail here
        save_figure(fig, tmp_path / "classes.png")
    said = [r.getMessage() for r in caplog.records if r.name == "cnnlab"]
    assert len(said) == 1 and "lacks 2 characters" in said[0] and "(猫 犬)" in said[0], said
    assert (tmp_path / "classes.png").stat().st_size > 0


def test_curves_leave_a_gap_where_an_epochs_metric_is_not_a_number(tmp_path):
    """An embedding run's validation can have no pairs to score in an epoch (NaN)."""
    from cnnlab.training.curves import plot_curves
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, train_auc=0.5 + e / 10,
                    val_auc=float("nan") if e == 2 else 0.6) for e in (1, 2, 3)]
    plot_curves(history, tmp_path / "curves.png", metric="auc")
    assert Image.open(tmp_path / "curves.png").size[0] > 0
    plot_curves([dict(epoch=1, train_loss=1.0, val_loss=float("nan"), train_accuracy=0.5,
                      val_accuracy=float("nan"))], tmp_path / "nan.png")
