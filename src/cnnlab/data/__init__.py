"""Data: named data sets, their splits, and the preprocessing that feeds a model."""
from .catalog import DataSplits, Split, list_datasets, load_dataset
from .images import BadImage, decode_image
from .transforms import Preprocess

__all__ = ["DataSplits", "Split", "list_datasets", "load_dataset", "Preprocess", "BadImage", "decode_image"]
