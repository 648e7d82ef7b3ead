"""cnnlab's own resize, crop, grey conversion, per-image augmentation, digits reader and
stratified split compute what torchvision and scikit-learn computed before them (the start-up
of `cnnlab train` imports neither: tests/test_startup.py), pixel for pixel and index for index,
so a run gives the numbers it gave before."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.data.augment import PRESETS
from cnnlab.data.catalog import shuffle_split
from cnnlab.data.digits import digits
from cnnlab.data.transforms import Preprocess, center_crop, resize, rgb_to_grayscale

v2 = pytest.importorskip("torchvision.transforms.v2")
F = v2.functional
sklearn_split = pytest.importorskip("sklearn.model_selection").train_test_split

MODES = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC,
         "nearest": v2.InterpolationMode.NEAREST,
         "nearest-exact": v2.InterpolationMode.NEAREST_EXACT}


def images(*shape, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.rand(shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("shape,size", [((5, 3, 8, 8), [28, 28]), ((3, 37, 23), [16, 20]),
                                        ((2, 1, 30, 40), [24]), ((1, 3, 9, 9), [9, 9])])
def test_resize_equals_torchvision(mode, dtype, shape, size):
    x = images(*shape, dtype=dtype)
    ours = resize(x, size, mode)
    theirs = F.resize(x, size, interpolation=MODES[mode], antialias=True)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def test_resize_keeps_a_single_channels_last_image_channels_last_as_torchvision_does():
    x = images(1, 3, 20, 30).contiguous(memory_format=torch.channels_last)
    ours, theirs = resize(x, [10, 12]), F.resize(x, [10, 12], antialias=True)
    assert torch.equal(ours, theirs) and ours.stride() == theirs.stride()


@pytest.mark.parametrize("shape,size", [((3, 10, 13), (6, 7)), ((2, 1, 5, 4), (8, 9)),
                                        ((3, 6, 6), (6, 9))])
def test_center_crop_and_grey_equal_torchvision(shape, size):
    x = images(*shape)
    assert torch.equal(center_crop(x, size), F.center_crop(x, list(size)))
    colour = images(4, 3, 9, 11, seed=1)
    assert torch.equal(rgb_to_grayscale(colour), F.rgb_to_grayscale(colour))


def test_a_pretrained_preprocess_resizes_and_crops_as_torchvision():
    prep = Preprocess(3, (24, 24), (0.5,) * 3, (0.25,) * 3, resize=28, interpolation="bicubic")
    x = images(2, 3, 40, 31)
    expected = F.center_crop(F.resize(x, [28], interpolation=MODES["bicubic"]), [24, 24])
    assert torch.equal(prep.fit_size(x), expected)
    masks = images(2, 40, 31) % 5
    grid = F.resize(masks[:, None], [28], interpolation=MODES["nearest-exact"], antialias=False)
    assert torch.equal(prep.fit_mask_size(masks), F.center_crop(grid, [24, 24])[:, 0])


@pytest.mark.parametrize("name", ["flip-crop", "none"])
def test_per_image_augmentation_draws_and_computes_as_transforms_v2(name):
    augment, size = PRESETS[name], (16, 12)
    pad = augment.sizes(size[0])[0]
    steps = ([v2.RandomHorizontalFlip(0.5)] if augment.flip else []) + (
        [v2.RandomCrop(list(size), padding=pad, padding_mode="reflect")] if pad else [])
    theirs = v2.Compose(steps) if steps else v2.Identity()
    ours = augment.per_image(size)
    image, mask = images(3, *size), images(*size) % 4
    for seed in range(20):
        torch.manual_seed(seed)
        expected = theirs(image)
        torch.manual_seed(seed)
        assert torch.equal(ours(image), expected)
    from torchvision import tv_tensors
    torch.manual_seed(7)
    want_image, want_mask = theirs(tv_tensors.Image(image), tv_tensors.Mask(mask))
    torch.manual_seed(7)
    got_image, got_mask = ours(image, mask)
    assert torch.equal(got_image, want_image) and torch.equal(got_mask, want_mask)


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits
    bunch, ours = load_digits(), digits()
    assert torch.equal(ours.labels, torch.from_numpy(bunch.target).long())
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    assert torch.equal(ours.images, torch.from_numpy(pixels).unsqueeze(1))
    assert ours.classes == [str(n) for n in bunch.target_names]


@pytest.mark.parametrize("labels", [
    np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),  # digits
    np.random.RandomState(3).randint(0, 7, 503), np.array([0, 0, 1, 1, 2, 2, 2, 5, 5, 5, 5])])
@pytest.mark.parametrize("fraction", [0.2, 0.1 / 0.8, 0.5])
def test_split_is_scikit_learns_train_test_split(labels, fraction):
    everything = np.arange(len(labels))
    for stratify in (labels, None):
        try:
            want = sklearn_split(everything, test_size=fraction, stratify=stratify,
                                 random_state=0)
        except ValueError:
            with pytest.raises(ValueError):
                shuffle_split(len(labels), fraction, stratify)
            continue
        got = shuffle_split(len(labels), fraction, stratify)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
