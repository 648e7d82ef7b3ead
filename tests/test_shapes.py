"""The `shapes` set: seeded, its boxes and masks exact, its labels what the pictures show."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.ops import masks_to_boxes

from cnnlab.data.shapes import ShapesData, generate_shapes, shapes
from cnnlab.data.sources import LabelledImages
from cnnlab.errors import UserError

CIRCLE, SQUARE, TRIANGLE = 0, 1, 2


@pytest.fixture(scope="module")
def sample() -> ShapesData:
    return generate_shapes(600, image_size=32, seed=7)


def shape_colours(data: ShapesData) -> torch.Tensor:
    """The colour of each image's first mask pixel: N x 3."""
    first = data.masks.flatten(1).float().argmax(dim=1)
    return data.images.flatten(2)[torch.arange(len(first)), :, first]


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    first, again = generate_shapes(40, seed=3), generate_shapes(40, seed=3)
    for field in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    other = generate_shapes(40, seed=4)
    assert not torch.equal(first.images, other.images)
    assert not torch.equal(first.masks, other.masks)


@pytest.mark.parametrize("size", [8, 13, 32, 64])
def test_any_image_size_gives_one_whole_shape_per_image(size):
    data = generate_shapes(30, image_size=size, seed=1, min_size_fraction=0.01)
    assert data.images.shape == (30, 3, size, size) and data.images.dtype == torch.uint8
    assert data.masks.shape == (30, size, size) and data.masks.dtype == torch.bool
    assert data.labels.dtype == torch.int64 and data.boxes.dtype == torch.float32
    assert data.classes == ["circle", "square", "triangle"]
    assert data.masks.flatten(1).any(dim=1).all(), "every image must hold a visible shape"
    assert (data.boxes >= 0).all() and (data.boxes <= size).all()


def test_mask_pixels_have_one_colour_and_the_box_is_the_masks_tight_box(sample):
    colours = shape_colours(sample)
    painted = (sample.images == colours[:, :, None, None]).all(dim=1)
    assert (painted | ~sample.masks).all(), "a mask pixel differs from its shape's colour"
    # torchvision gives the indices of the outermost pixels; our boxes run along their far edges.
    expected = masks_to_boxes(sample.masks) + torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert torch.equal(sample.boxes, expected)


def test_shapes_stand_out_from_the_background_around_them(sample):
    masks = sample.masks[:, None].float()
    ring = (nn.functional.max_pool2d(masks, 3, stride=1, padding=1) > 0) & (masks == 0)
    colours = shape_colours(sample).float()[:, :, None, None]
    distance = (sample.images.float() - colours).norm(dim=1, keepdim=True)  # RGB, per pixel
    mean_distance = (distance * ring).sum(dim=(1, 2, 3)) / ring.sum(dim=(1, 2, 3))
    nearest = torch.where(ring, distance, torch.tensor(1e9)).amin(dim=(1, 2, 3))
    assert mean_distance.min() > 90
    assert nearest.min() > 30


def test_classes_are_balanced():
    counts = torch.bincount(generate_shapes(301, seed=5).labels, minlength=3)
    assert counts.max() - counts.min() <= 1


def test_each_class_has_its_geometry():
    """How much of its box a shape fills: pi/4 for a circle, all for a square, half a triangle."""
    data = generate_shapes(300, image_size=64, seed=2, min_size_fraction=0.3)
    x1, y1, x2, y2 = data.boxes.unbind(dim=1)
    width, height = x2 - x1, y2 - y1
    fill = data.masks.flatten(1).sum(dim=1) / (width * height)
    circles, squares, triangles = (data.labels == k for k in (CIRCLE, SQUARE, TRIANGLE))
    assert (fill[circles] - math.pi / 4).abs().max() < 0.07
    assert (fill[squares] == 1).all()
    assert ((width - height).abs()[circles | squares] <= 1).all()
    assert (fill[triangles] - 0.5).abs().max() < 0.1
    # A triangle's base runs along one whole side of its box (the other shapes' fills rule out
    # every other half-filled figure): its base row or column is full.
    assert all(_has_full_box_side(mask) for mask in data.masks[triangles])


def _has_full_box_side(mask: torch.Tensor) -> bool:
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    inside = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    sides = (inside[0], inside[-1], inside[:, 0], inside[:, -1])
    return any(bool(side.all()) for side in sides)


def test_bad_arguments_are_user_errors():
    for kwargs in ({"count": -1}, {"count": 5, "image_size": 7},
                   {"count": 5, "min_size_fraction": 0.8, "max_size_fraction": 0.5},
                   {"count": 5, "max_size_fraction": 1.5}):
        with pytest.raises(UserError):
            generate_shapes(**kwargs)


def test_catalogue_source_is_the_default_set():
    data = shapes()
    assert isinstance(data, LabelledImages)
    assert data.images.shape == (4000, 3, 32, 32)
    assert torch.equal(data.images[:50], generate_shapes(4000, seed=0).images[:50])


def test_a_small_cnn_learns_the_labels_from_the_pictures():
    """Well above chance on unseen images, so each label names the shape actually drawn."""
    torch.manual_seed(0)
    train, held_out = generate_shapes(2000, 24, seed=1), generate_shapes(600, 24, seed=2)
    model = _small_cnn()
    # Batches this small gain nothing from intra-op threads, and on a busy shared machine
    # competing threads made this test four times slower; one thread keeps it at a few seconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(model, _as_input(train.images), train.labels, epochs=4)
        model.eval()
        with torch.no_grad():
            predicted = model(_as_input(held_out.images)).argmax(dim=1)
    finally:
        torch.set_num_threads(threads)
    assert (predicted == held_out.labels).float().mean() > 0.8


def _small_cnn() -> nn.Module:
    def block(in_channels, out_channels):
        return [nn.Conv2d(in_channels, out_channels, 3, padding=1),
                nn.BatchNorm2d(out_channels), nn.ReLU()]
    # Global max pooling: "is there a corner / a curve anywhere", wherever the shape sits.
    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                         *block(32, 32), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 3))


def _as_input(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1


def _train(model, inputs, labels, epochs, batch_size=64):
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(batch_size):
            loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
