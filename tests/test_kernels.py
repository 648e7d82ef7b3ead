"""The kernel lab: the lectures' kernels as printed, what they do to an image, separability, the
pictures it saves from the photographs the packages ship, and its mistakes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.course.kernels import (KERNELS, correlate, correlate_separable, get_kernel, kernel_lab,
                                   sample_image, separability)


@pytest.mark.parametrize("name,printed", [
    ("blur-cs428", [[0, 1, 0], [1, 4, 1], [0, 1, 0]]),          # 002: "blur an image"
    ("sharpen-cs428", [[0, -1, 0], [-1, 8, -1], [0, -1, 0]]),   # 002: "sharpen an image"
    ("edge-cs428", [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]),      # 002: "detect edges"
    ("sobel-cs428", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),      # 002: "This filter is known as a Sobel filter"
    ("laplacian-8", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),  # 004: "Kernel (parameters of local linear regression)"
    ("sobel-x", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),          # 003: Separable Convolutions, "x filter"
    ("sobel-y", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),          # 001: "Kernel/Filter (Horizontal edge detection)"
])
def test_the_lectures_kernels_are_as_printed(name, printed):
    assert get_kernel(name)[1].tolist() == printed


def test_003_y_filter_is_sobel_y_negated():
    # 003 prints the y filter as [+1 +2 +1; 0 0 0; -1 -2 -1], the opposite sign of 001's
    assert (-get_kernel("sobel-y")[1]).tolist() == [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]


def _step_image(size: int = 12) -> torch.Tensor:
    """Dark left half, bright right half: one vertical edge between columns 5 and 6."""
    image = torch.zeros(1, size, size, dtype=torch.float64)
    image[..., size // 2:] = 1.0
    return image


def test_sobel_x_finds_the_vertical_edge_and_sobel_y_finds_none():
    image = _step_image()
    edges = correlate(image, get_kernel("sobel-x")[1])
    assert set(torch.nonzero(edges[0].abs() > 1e-12)[:, 1].tolist()) == {5, 6}
    assert float(edges[0, 4, 5]) == 4.0  # brightness rises to the right: positive, 1 + 2 + 1
    assert float(correlate(image, get_kernel("sobel-y")[1]).abs().max()) == 0.0


def test_brightness_keeping_kernels_leave_a_flat_image_flat():
    flat = torch.full((3, 9, 9), 0.5, dtype=torch.float64)
    for name in ("identity", "box-blur", "gaussian-blur", "gaussian-blur-5", "sharpen", "emboss"):
        assert torch.allclose(correlate(flat, get_kernel(name)[1]), flat), name
    for name in ("laplacian", "laplacian-8", "edge-cs428", "sobel-x", "prewitt-y"):
        assert float(correlate(flat, get_kernel(name)[1]).abs().max()) < 1e-12, name
    # the CS428 blur is not normalised: its weights sum to 8, so a flat image comes out 8 times brighter
    assert torch.allclose(correlate(flat, get_kernel("blur-cs428")[1]), 8 * flat)


def test_separability_by_rank():
    sobel = separability(get_kernel("sobel-x")[1])
    assert sobel["separable"] and sobel["column"] == [1, 2, 1] and sobel["row"] == [-1, 0, 1]
    sobel_y = separability(get_kernel("sobel-y")[1])
    assert sobel_y["column"] == [-1, 0, 1] and sobel_y["row"] == [1, 2, 1]  # 003: smoothing times difference
    assert separability(get_kernel("gaussian-blur-5")[1])["column"] == [1, 4, 6, 4, 1]
    assert separability(get_kernel("box-blur")[1])["separable"]
    assert separability(get_kernel("laplacian-8")[1])["rank"] == 2
    assert separability(get_kernel("emboss")[1])["rank"] == 3
    assert not separability(get_kernel("sharpen")[1])["separable"]


@settings(max_examples=60, deadline=None)
@given(column=st.lists(st.integers(-5, 5), min_size=1, max_size=5).filter(any),
       row=st.lists(st.integers(-5, 5), min_size=1, max_size=5).filter(any))
def test_any_outer_product_is_separable_and_its_factors_rebuild_it(column, row):
    kernel = np.outer(column, row).astype(float)
    found = separability(kernel)
    assert found["separable"]
    assert np.allclose(np.outer(found["column"], found["row"]), kernel)
    image = torch.rand(2, 7, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(correlate_separable(image, found["column"], found["row"]), correlate(image, kernel))


def test_kernel_lab_on_a_shipped_photograph_saves_both_side_by_side(tmp_path):
    out = tmp_path / "camera_sobel.png"
    result = kernel_lab(sample="camera", kernel="sobel-x", out=str(out))
    split = result["separability"]
    assert split["separable"] and split["max_difference"] < 1e-12 and split["values_compared"] == 512 * 512
    assert split["macs_per_pixel"] == {"two_d": 9, "two_passes": 6}
    picture = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert picture.shape[1] > 1.8 * picture.shape[0]  # two panels beside each other
    half = picture.shape[1] // 2
    left, right = picture[:, :half], picture[:, picture.shape[1] - half:]
    assert left.std() > 20 and right.std() > 5  # a photograph and an edge map, not blank panels
    assert np.abs(right - left).mean() > 10  # and not the same picture twice


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "china", "flower"])
def test_the_shipped_photographs_load_offline(name):
    pixels = sample_image(name)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and min(pixels.shape[:2]) >= 300


def test_kernels_command_reads_an_image_file(tmp_path, capsys):
    image = tmp_path / "step.png"
    Image.fromarray((_step_image(32)[0].numpy() * 255).astype(np.uint8)).save(image)
    out = tmp_path / "edges.png"
    assert main(["kernels", str(image), "--kernel", "1 0 -1; 2 0 -2; 1 0 -1", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert out.is_file() and result["kernel"] == "custom" and result["shape"] == [1, 32, 32]
    assert result["output_range"] == [-4.0, 0.0]  # the rise is to the right, this kernel subtracts it
    assert result["separability"]["column"] == [1, 2, 1] and result["separability"]["row"] == [1, 0, -1]


def test_kernels_text_says_separable_and_shows_both_passes(tmp_path, capsys):
    assert main(["kernels", "--sample", "coins", "--kernel", "gaussian-blur", "--out", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "separable: yes (rank 1): column [1 2 1] times row [0.0625 0.125 0.0625]" in out
    assert "two 1-D passes (6 multiply-adds per pixel) equal the 2-D pass (9)" in out
    assert "clipped to 0..1" in out
    assert main(["kernels", "--sample", "coins", "--kernel", "laplacian-8", "--out", str(tmp_path / "l.png")]) == 0
    assert "separable: no (rank 2" in capsys.readouterr().out


@pytest.mark.parametrize("argv,fragment", [
    (["--kernel", "sobel-x"], "give either an image file or --sample NAME"),
    (["x.png", "--sample", "camera", "--kernel", "sobel-x"], "give either an image file or --sample NAME"),
    (["--sample", "lena", "--kernel", "sobel-x"], "unknown sample image 'lena'"),
    (["--sample", "camera", "--kernel", "smudge"], "unknown kernel 'smudge'"),
    (["--sample", "camera", "--kernel", "1 2; 3"], "same number of values"),
    (["--sample", "camera", "--kernel", "1 | 2"], "a kernel for an image is one matrix"),
    (["no_such_file.png", "--kernel", "sobel-x"], "does not exist"),
    (["--sample", "camera", "--kernel", "sobel-x", "--out", "picture.xyz"], "cannot save a picture as .xyz"),
    (["--sample", "camera", "--kernel", "sobel-x", "--out", "no_such_dir/p.png"], "folder no_such_dir does not exist"),
    (["--sample", "camera", "--kernel", "sobel-x", "--padding-mode", "mirror"], "cannot pad this image with mode 'mirror'"),
])
def test_kernels_mistakes_are_one_line_and_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["kernels", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and fragment in lines[0] and "Traceback" not in captured.err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_every_catalogue_kernel_has_an_explanation():
    assert all(k.about and np.isfinite(k.array()).all() for k in KERNELS.values())
