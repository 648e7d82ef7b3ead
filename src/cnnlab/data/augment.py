"""Augmentation presets (lectures 001, 003: random crop, flip), per image and per whole batch.

Each preset is a few numbers; two implementations draw from the same distribution:
- `per_image()`: torchvision transforms v2 on one uint8 C x H x W image, for DataLoader workers;
- `AugmentedImages.take()`: the same operations on a whole batch on the training device, with
  no Python loop over images (the fast CIFAR training recipe; see that class).
A training step sees: horizontal flip with probability 1/2; a translation by up to `pad`
pixels each way, the gap filled by reflection (a random crop of the reflect-padded image);
then, after normalisation, a `cutout` x `cutout` square set to 0 (the mean) at a uniformly
random centre, clipped at the border.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from ..errors import unknown_name


@dataclass(frozen=True)
class Augment:
    flip: bool = False
    pad_fraction: float = 0.0     # translation range, as a fraction of the image side
    cutout_fraction: float = 0.0  # cutout side, as a fraction of the image side

    def sizes(self, height: int) -> tuple[int, int]:
        return round(self.pad_fraction * height), round(self.cutout_fraction * height)

    def stored_factor(self, size: tuple[int, int]) -> float:
        """Memory an in-memory training set takes (AugmentedImages), in multiples of its own."""
        pad, _ = self.sizes(size[0])
        return (2 if self.flip else 1) * (size[1] + 2 * pad) / size[1]

    def per_image(self, size: tuple[int, int]) -> v2.Transform:
        """uint8 image -> augmented uint8 image (cutout is applied later, see `cutout_image`)."""
        pad, _ = self.sizes(size[0])
        steps = [v2.RandomHorizontalFlip(0.5)] if self.flip else []
        if pad:
            steps.append(v2.RandomCrop(list(size), padding=pad, padding_mode="reflect"))
        return v2.Compose(steps) if steps else v2.Identity()

    def cutout_image(self, image: torch.Tensor) -> torch.Tensor:
        """Cutout on one normalised image, with the global RNG (as v2 transforms use)."""
        _, side = self.sizes(image.shape[-2])
        if not side:
            return image
        cy = torch.randint(image.shape[-2], ()).item()
        cx = torch.randint(image.shape[-1], ()).item()
        image = image.clone()
        image[..., max(cy - side // 2, 0):cy - side // 2 + side,
              max(cx - side // 2, 0):cx - side // 2 + side] = 0
        return image

    def cutout_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, height, width = len(images), *images.shape[-2:]  # clips too: N x T x C x H x W
        _, side = self.sizes(height)
        if not side:
            return images
        device = images.device
        cy = torch.randint(0, height, (n, 1, 1), generator=generator, device=device)
        cx = torch.randint(0, width, (n, 1, 1), generator=generator, device=device)
        top, left = cy - side // 2, cx - side // 2
        ys = torch.arange(height, device=device)[None, :, None]
        xs = torch.arange(width, device=device)[None, None, :]
        inside = (ys >= top) & (ys < top + side) & (xs >= left) & (xs < left + side)
        return images.masked_fill(inside[:, None], 0)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices up to size - 1 outside [0, size) mirrored back in, as reflect padding does
    (the edge pixel itself is not repeated)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


class AugmentedImages:
    """A uint8 N x C x H x W image set kept ready for batched flip and translate.

    `take(index, generator)` returns those images, each flipped with probability 1/2 and
    translated by up to `pad` pixels each way with reflection: the same pixels as flipping,
    reflect-padding and cropping each image. The set is stored once more mirrored, and both
    copies reflect-padded sideways, so every output row is `width` consecutive bytes of the
    store: a batch is one `index_select` of rows from a sliding-window view of it. That costs
    2.5x the set's memory on 32x32 images and is about 3-4x faster than gathering pixels
    (0.2-0.3 ms against 0.9 ms for 128 CIFAR images on a 2-core CPU), which keeps
    augmentation a small fraction of even a small model's training step."""

    def __init__(self, images: torch.Tensor, augment: Augment | None = None):
        augment = augment or Augment()
        self.images, self.count = images, len(images)
        self.active = augment.flip or augment.pad_fraction > 0
        if not self.active:  # any tensor rows, images or not
            return
        _, self.channels, self.height, self.width = images.shape
        self.flip = augment.flip
        self.pad = min(augment.sizes(self.height)[0], self.height - 1, self.width - 1)
        copies = torch.cat([images, images.flip(-1)]) if self.flip else images
        columns = _reflect(torch.arange(-self.pad, self.width + self.pad, device=images.device),
                           self.width)
        store = copies.index_select(-1, columns).contiguous().view(-1)
        self.images = None  # only the store is kept
        self.padded_width = self.width + 2 * self.pad
        self.rows = store.as_strided((store.numel() - self.width + 1, self.width), (1, 1))

    def __len__(self) -> int:
        return self.count

    @property
    def device(self) -> torch.device:
        return (self.rows if self.active else self.images).device

    def take(self, index: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Images `index`, augmented with draws from `generator` (None: unaugmented)."""
        if not self.active:
            return self.images[index]
        n, device, pad = len(index), self.device, self.pad
        first = index
        rows = torch.arange(self.height, device=device).expand(n, self.height)
        shift = torch.full((n, 1), pad, device=device)
        if generator is not None:
            if self.flip:
                flipped = torch.rand(n, generator=generator, device=device) < 0.5
                first = index + flipped * self.count
            if pad:
                dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=device)
                shift = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=device)
                rows = _reflect(rows + dy - pad, self.height)
        # Where each output row starts in the store: image, channel, source row, column shift.
        plane = self.height * self.padded_width
        channel = torch.arange(self.channels, device=device)[None, :, None] * plane
        starts = (first[:, None, None] * (self.channels * plane) + channel
                  + (rows * self.padded_width + shift)[:, None, :])
        return self.rows.index_select(0, starts.reshape(-1)).view(
            n, self.channels, self.height, self.width)


PRESETS = {
    "none": Augment(),
    "flip-crop": Augment(flip=True, pad_fraction=1 / 8),              # 4 px on 32x32
    "strong": Augment(flip=True, pad_fraction=1 / 8, cutout_fraction=1 / 4),
}


def preset(name: str) -> Augment:
    if name not in PRESETS:
        raise unknown_name("augmentation preset", name, PRESETS)
    return PRESETS[name]
