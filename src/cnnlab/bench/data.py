"""The data every contender sees: one synthetic CIFAR-shaped uint8 set, in three forms.

- `augmented_batches`: float batches already flipped, cropped and normalised, on the device
  (what "compute-only" means: no data work inside the timed steps);
- `memory_batches`: cnnlab's in-memory path, uint8 on the device, augmented per batch;
- `lecture_loader`: the lectures' path, as torchvision's CIFAR10 class does it: each uint8
  image becomes a PIL image, then RandomCrop, RandomHorizontalFlip, ToTensor and Normalize,
  one image at a time, batched by a DataLoader.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..data.augment import preset
from ..data.memory import TensorBatches, batch_transform
from ..data.shapes import generate_shapes
from ..data.transforms import Preprocess, channel_stats, to_channels

AUGMENT = "flip-crop"  # horizontal flip, translation by up to 1/8 of the side (4 px on 32)


def uint8_set(input_shape, count: int, seed: int = 0):
    """(images N x C x H x W uint8, labels, Preprocess with the set's mean and std)."""
    channels, height, _ = input_shape
    data = generate_shapes(count, image_size=height, seed=seed)
    images = to_channels(data.images, channels).contiguous()
    mean, std = channel_stats(images)
    return images, data.labels, Preprocess(channels, (height, height), mean, std)


def memory_batches(images, labels, preprocess, batch_size: int, device) -> TensorBatches:
    augment = preset(AUGMENT)
    return TensorBatches(images, labels, batch_size, shuffle=True, device=device,
                         transform=batch_transform(preprocess, augment), augment=augment)


def augmented_batches(images, labels, preprocess, batch_size: int, count: int, device) -> list:
    """`count` distinct training batches, computed once and kept on the device."""
    source = memory_batches(images, labels, preprocess, batch_size, device)
    batches = []
    while len(batches) < count:  # passes over the set until there are enough
        batches.extend(b for b, _ in zip(source, range(count - len(batches))))
    return batches


def plain_batches(images, labels, preprocess, batch_size: int, device) -> list:
    """Unaugmented normalised batches for inference, on the device."""
    starts = range(0, len(labels) - batch_size + 1, batch_size)
    return [(preprocess.normalise(images[i:i + batch_size]).to(device),
             labels[i:i + batch_size].to(device)) for i in starts]


class LectureDataset(Dataset):
    """torchvision's CIFAR10 __getitem__: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        hwc = images.permute(0, 2, 3, 1).numpy()
        self.images = hwc[..., 0] if hwc.shape[-1] == 1 else hwc  # PIL wants H x W for grey
        self.labels, self.transform = labels.numpy(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(np.ascontiguousarray(self.images[index]))
        return self.transform(image), int(self.labels[index])


def lecture_loader(images, labels, preprocess, batch_size: int, workers: int) -> DataLoader:
    side = preprocess.size[0]
    per_image = transforms.Compose([
        transforms.RandomCrop(side, padding=round(side / 8), padding_mode="reflect"),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(preprocess.mean, preprocess.std)])
    return DataLoader(LectureDataset(images, labels, per_image), batch_size=batch_size,
                      shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                      drop_last=True)
