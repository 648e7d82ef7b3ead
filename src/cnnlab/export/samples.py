"""The real images the parity check runs on, as uint8 at the model's size.

A run's own test images where cnnlab can load them without the network (built-in and
generated sets, the user's folders, standard sets already downloaded): they are what the
model was trained to answer for, so its outputs there are the ones worth matching. Otherwise
(a pretrained model, a standard set not on this machine) photographs that scikit-image and
scikit-learn ship, which always work offline.
"""
from __future__ import annotations

import torch

from ..errors import UserError

COUNT = 16  # enough for top-1 agreement to mean something, few enough to take a second
PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "china", "flower", "coins")


def parity_images(subject, count: int = COUNT) -> tuple[torch.Tensor, str]:
    """(uint8 images N x C x H x W, or clips N x T x C x H x W, at the model's size; where
    they come from, in words)."""
    if subject.dataset is not None:
        images = _test_images(subject, count)
        if images is not None:
            what = "clips" if subject.task == "video" else "images"
            return images, f"{len(images)} test {what} of {subject.dataset}"
    if subject.task == "video":
        raise UserError(f"the parity check needs test clips of {subject.dataset}, which "
                        "cannot be loaded here; make them available (see cnnlab datasets).")
    return _photographs(subject.preprocess), (f"{len(PHOTOGRAPHS)} photographs shipped with "
                                              "scikit-image and scikit-learn")


def _test_images(subject, count: int) -> torch.Tensor | None:
    from ..data import load_dataset
    from ..data.catalog import FileSplit
    try:
        test = load_dataset(subject.dataset, subject.data_dir).test
    except UserError:  # not downloaded, or the folder moved: photographs will do
        return None
    if isinstance(test, FileSplit):
        return _decoded(test.files, subject.preprocess, count)
    return subject.preprocess.fit_size(test.images[:count])


def _decoded(files, preprocess, count: int) -> torch.Tensor | None:
    """The first `count` test files that decode; bad ones are left out (training reported
    them already)."""
    from ..data.images import BadImage, decode_image
    images = []
    for file in files:
        try:
            images.append(preprocess.fit_size(decode_image(file)))
        except BadImage:
            continue
        if len(images) == count:
            break
    return torch.stack(images) if images else None


def _photographs(preprocess) -> torch.Tensor:
    from ..course.kernels import sample_image
    images = []
    for name in PHOTOGRAPHS:
        pixels = torch.from_numpy(sample_image(name).copy())
        pixels = pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        images.append(preprocess.fit_size(pixels))
    return torch.stack(images)
