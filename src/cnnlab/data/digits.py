"""scikit-learn's 1,797 8x8 handwritten digits (UCI), read with numpy from the CSV file the
package ships: no download, and no `import sklearn`, which takes a second or two of start-up
(scipy.stats and its array API come with it) for a file numpy reads in milliseconds.

Pixels count ink on a 0-16 scale; scaled to 0-255 they read as white digits on black, the
same polarity as MNIST. The images, labels and order are load_digits()'s own
(tests/test_same_results.py compares them).
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .sources import LabelledImages


def digits_file() -> Path:
    """Where the installed scikit-learn keeps digits.csv.gz, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the digits data set ships with scikit-learn, which is not installed; "
                        "pip install scikit-learn.")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise UserError(f"scikit-learn's digits file {path} is missing; reinstall scikit-learn.")
    return path


def digits() -> LabelledImages:
    """Rows of 64 pixel counts and the digit, as load_digits reads them."""
    with gzip.open(digits_file(), "rt") as rows:
        data = np.loadtxt(rows, delimiter=",")
    pixels = np.rint(data[:, :-1].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)
    return LabelledImages(torch.from_numpy(pixels).unsqueeze(1),
                          torch.from_numpy(data[:, -1].astype(int)).long(),
                          [str(digit) for digit in range(10)])
