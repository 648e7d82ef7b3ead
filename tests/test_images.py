"""Decoding real-world image files: odd modes converted right, bad files refused with a reason."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.images import BadImage, decode_image

from bad_images import gradient, write_bad_files, write_bomb, write_odd_modes


def test_every_odd_mode_becomes_grey_or_rgb_uint8(tmp_path):
    for name, (channels, height) in write_odd_modes(tmp_path).items():
        image = decode_image(tmp_path / name)
        assert image.dtype.is_floating_point is False and image.dtype.itemsize == 1, name
        assert image.shape[0] == channels and image.shape[1] == height, name


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    write_odd_modes(tmp_path)
    image = decode_image(tmp_path / "deep16.png")[0].numpy()
    # PIL's own convert("L") would clip every value above 255 to 255.
    assert np.array_equal(image, gradient()[..., 0])


def test_exif_orientation_is_applied(tmp_path):
    write_odd_modes(tmp_path)
    image = decode_image(tmp_path / "rotated.jpg").numpy()
    # Stored 12x16 with 'rotate 90 clockwise': shown 16 high, 12 wide, and the red ramp that
    # ran left-to-right now runs top-to-bottom.
    assert image.shape == (3, 16, 12)
    red = image[0].astype(int)
    assert red[-1].mean() - red[0].mean() > 150 and abs(red[:, -1].mean() - red[:, 0].mean()) < 40


def test_palette_and_cmyk_keep_their_colours(tmp_path):
    write_odd_modes(tmp_path)
    expected = gradient().transpose(2, 0, 1).astype(int)
    for name in ("palette.gif", "cmyk.jpg", "really-a-png.jpg"):
        assert np.abs(decode_image(tmp_path / name).numpy().astype(int) - expected).mean() < 12, name


@pytest.mark.parametrize("name", ["empty.png", "notes.jpg", "truncated.jpg", "bomb.png"])
def test_bad_files_are_refused_with_their_reason(tmp_path, name):
    reasons = write_bad_files(tmp_path)
    with pytest.raises(BadImage, match=reasons[name]):
        decode_image(tmp_path / name)


def test_a_bomb_is_refused_from_its_header_before_any_decoding(tmp_path, monkeypatch):
    write_bomb(tmp_path / "bomb.png", 20, 20)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self))
    with pytest.raises(BadImage, match="more than the limit of 100"):
        decode_image(tmp_path / "bomb.png", max_pixels=100)
    assert decoded == []
