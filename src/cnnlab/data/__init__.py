"""Data: named data sets, their splits, and the preprocessing that feeds a model."""
from .catalog import DataSplits, Split, list_datasets, load_dataset
from .transforms import Preprocess, read_image

__all__ = ["DataSplits", "Split", "list_datasets", "load_dataset", "Preprocess", "read_image"]
