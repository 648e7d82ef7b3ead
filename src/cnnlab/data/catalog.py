"""Named data sets -> train / validation / test splits with class names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from sklearn.model_selection import train_test_split

from ..errors import unknown_name
from . import sources

# The split is fixed (not tied to --seed) so runs with different seeds share one test set.
SPLIT_SEED = 0


@dataclass
class Split:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataSplits:
    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split


CATALOG: dict[str, Callable[..., sources.LabelledImages]] = {
    "digits": sources.digits,
}

# Fractions of the whole set held out where a data set ships without splits.
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1


def list_datasets() -> list[str]:
    return sorted(CATALOG)


def load_dataset(name: str, data_dir: str = "data") -> DataSplits:
    """Load a catalogued data set and split it, stratified by class and seeded."""
    if name not in CATALOG:
        raise unknown_name("data set", name, CATALOG)
    data = CATALOG[name]()
    train, val, test = stratified_split(data.labels, TEST_FRACTION, VAL_FRACTION)
    pick = lambda idx: Split(data.images[idx], data.labels[idx])  # noqa: E731
    return DataSplits(name, data.classes, pick(train), pick(val), pick(test))


def stratified_split(labels: torch.Tensor, test_fraction: float, val_fraction: float):
    """Index tensors for train, validation and test, each with the class balance of the whole."""
    everything = torch.arange(len(labels)).numpy()
    rest, test = train_test_split(everything, test_size=test_fraction,
                                  stratify=labels.numpy(), random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels.numpy()[rest], random_state=SPLIT_SEED)
    return torch.from_numpy(train), torch.from_numpy(val), torch.from_numpy(test)
