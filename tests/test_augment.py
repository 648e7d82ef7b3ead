"""The batched augmentation (fast path) draws from the same distribution as the per-image one."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chi2_contingency

from cnnlab.data.augment import PRESETS, AugmentedImages, preset
from cnnlab.errors import UserError

SIZE, DRAWS = 16, 4000
# Every pixel of the marker image is different, so an output identifies its flip and shift.
MARKER = torch.arange(SIZE * SIZE, dtype=torch.uint8).reshape(1, SIZE, SIZE)


def _candidates(pad: int) -> dict[bytes, tuple]:
    """Every (flip, dy, dx) outcome, computed from the definition: flip, reflect-pad, crop."""
    out = {}
    for flip, dy, dx in itertools.product((0, 1), range(2 * pad + 1), range(2 * pad + 1)):
        image = MARKER.flip(-1) if flip else MARKER
        padded = F.pad(image[None].float(), (pad,) * 4, mode="reflect")[0].to(torch.uint8)
        out[padded[:, dy:dy + SIZE, dx:dx + SIZE].numpy().tobytes()] = (flip, dy, dx)
    return out


def _batched(augment, images: torch.Tensor, generator) -> torch.Tensor:
    """The training fast path: every image of `images` taken once, augmented."""
    return AugmentedImages(images, augment).take(torch.arange(len(images)), generator)


def _outcome_table(outcomes_a, outcomes_b, categories):
    return np.array([[outcomes.count(c) for c in categories] for outcomes in (outcomes_a, outcomes_b)])


def test_flip_and_translate_match_between_per_image_and_batched_paths():
    augment = preset("flip-crop")
    pad, _ = augment.sizes(SIZE)
    candidates = _candidates(pad)
    assert len(candidates) == 2 * (2 * pad + 1) ** 2  # all outcomes distinct
    torch.manual_seed(0)
    per_image = augment.per_image((SIZE, SIZE))
    one_by_one = [candidates[per_image(MARKER).numpy().tobytes()] for _ in range(DRAWS)]
    batch = _batched(augment, MARKER.expand(DRAWS, 1, SIZE, SIZE), torch.Generator().manual_seed(1))
    batched = [candidates[image.numpy().tobytes()] for image in batch]
    table = _outcome_table(one_by_one, batched, sorted(candidates.values()))
    assert (table > 0).all()  # every flip and shift happens on both paths
    # Deterministic seeds; a real mismatch (bias, wrong range) drives p to ~0 at 4,000 draws.
    assert chi2_contingency(table).pvalue > 1e-4
    flips = table[:, : table.shape[1] // 2].sum(axis=1) / DRAWS
    assert np.allclose(flips, 0.5, atol=0.04)


def test_batched_flip_and_translate_equal_flip_pad_crop_on_colour_and_oblong_images():
    """Each output is its image flipped or not, reflect-padded and cropped: channels kept
    together, rows and columns not mixed up on an image that is wider than tall."""
    augment, height, width = preset("flip-crop"), 16, 24
    pad, _ = augment.sizes(height)
    images = torch.randint(0, 256, (64, 3, height, width), dtype=torch.uint8)
    index = torch.randperm(64)[:40]  # a shuffled share of the set, as a training pass takes it
    batch = AugmentedImages(images, augment).take(index, torch.Generator().manual_seed(0))
    for image, out in zip(images[index], batch):
        options = [F.pad((image.flip(-1) if flip else image)[None].float(), (pad,) * 4,
                         mode="reflect")[0, :, dy:dy + height, dx:dx + width].to(torch.uint8)
                   for flip, dy, dx in itertools.product((0, 1), range(2 * pad + 1),
                                                         range(2 * pad + 1))]
        assert any(torch.equal(out, option) for option in options)


def _cutout_boxes(images: torch.Tensor) -> list[tuple[int, int, int, int]]:
    boxes = []
    for image in images:
        ys, xs = (image[0] == 0).nonzero(as_tuple=True)
        boxes.append((int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())))
    return boxes


def test_cutout_matches_between_paths_and_is_a_clipped_square():
    augment = preset("strong")
    _, side = augment.sizes(SIZE)
    ones = torch.ones(1, SIZE, SIZE)
    torch.manual_seed(0)
    one_by_one = _cutout_boxes([augment.cutout_image(ones) for _ in range(DRAWS)])
    batched = _cutout_boxes(augment.cutout_batch(ones.expand(DRAWS, 1, SIZE, SIZE),
                                                 torch.Generator().manual_seed(1)))
    for top, left, bottom, right in one_by_one + batched:
        assert bottom - top + 1 <= side and right - left + 1 <= side
        assert (bottom - top + 1 == side or top == 0 or bottom == SIZE - 1)
    for axis in (0, 1):  # where the square lands, row-wise and column-wise
        table = _outcome_table([b[axis] for b in one_by_one], [b[axis] for b in batched],
                               list(range(SIZE)))
        assert chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue > 1e-4


def test_no_augmentation_changes_nothing():
    images = torch.randint(0, 256, (8, 3, SIZE, SIZE), dtype=torch.uint8)
    assert torch.equal(_batched(preset("none"), images, torch.Generator()), images)
    assert torch.equal(_batched(preset("strong"), images, None), images)  # no generator: as stored
    assert torch.equal(preset("none").per_image((SIZE, SIZE))(images[0]), images[0])


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UserError, match="choose one of: flip-crop, none, strong"):
        preset("extreme")
    assert set(PRESETS) == {"none", "flip-crop", "strong"}
