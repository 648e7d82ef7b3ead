"""From data splits to batches the model can eat, on the fast path when the data fits.

    in memory (default when it fits): uint8 tensor on the device -> TensorBatches with
        batched augmentation and normalisation (memory.py)
    streaming: a Dataset decoding/resizing each image -> per-image transforms v2 in
        DataLoader workers (for sets too big to hold at the model's input size)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import UserError
from .augment import Augment, preset
from .catalog import DataSplits, FileSplit, Split
from .decode import decode_files, default_workers
from .images import decode_image
from .memory import TensorBatches, batch_transform
from .transforms import Preprocess, channel_stats

LOADING = ("auto", "memory", "stream")
STATS_SAMPLE = 5000  # images used for mean/std when streaming


def memory_budget(device: torch.device) -> int:
    """A quarter of the device's memory: room left for the model, activations and the OS."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


class StreamDataset(Dataset):
    """One image at a time: read (tensor row or file), size, augment, normalise."""

    def __init__(self, split, preprocess: Preprocess, augment: Augment | None):
        self.split, self.preprocess, self.augment = split, preprocess, augment
        self.per_image = augment.per_image(preprocess.size) if augment else None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        split = self.split
        image = decode_image(split.files[index]) if isinstance(split, FileSplit) else split.images[index]
        image, target = self.preprocess.fit_size(image), split.labels[index]
        if target.dim() == 2:  # a class-index mask: sized and augmented with its image
            target = self.preprocess.fit_mask_size(target)
            if self.per_image is not None:
                # the mask moves with its image (augment.PerImage: no blending)
                image, target = self.per_image(image, target)
        elif self.per_image is not None:
            image = self.per_image(image)
        inputs = self.preprocess.normalise(image)
        if self.augment is not None:
            inputs = self.augment.cutout_image(inputs)
        return inputs, target


@dataclass
class Pipeline:
    preprocess: Preprocess
    batches: dict            # split name -> iterable of (inputs, labels)
    in_memory: bool
    sizes: dict              # split name -> number of images
    skipped: list[tuple[str, str]] = field(default_factory=list)
    splits: DataSplits | None = None  # what the batches were made from (RUN/split.json)


def build_pipeline(splits: DataSplits, channels: int, size, *, batch_size: int, device,
                   augment: str = "none", loading: str = "auto", workers: int | None = None,
                   bad_files: str = "skip", seed: int = 0, only: tuple = ("train", "val", "test"),
                   preprocess: Preprocess | None = None, rank: int = 0, world: int = 1) -> Pipeline:
    """Batches for the named splits; `preprocess` given (a saved run: channels and size are
    then its own) or fitted on the training split."""
    if loading not in LOADING:
        raise UserError(f"unknown data loading '{loading}'; choose one of: {', '.join(LOADING)}.")
    workers = default_workers() if workers is None or workers < 0 else workers
    sizing = preprocess or Preprocess(channels, tuple(size), (0.0,) * channels, (1.0,) * channels)
    parts = {name: getattr(splits, name) for name in only}
    # Detection targets (a dict per image) live beside their images in memory (BoxBatches),
    # augmented per image with their boxes (box_augment.py).
    boxed = any(isinstance(p, Split) and isinstance(p.labels, list) for p in parts.values())
    if boxed:
        if loading == "stream":
            raise UserError("--data-loading stream is for labels and masks; a data set with "
                            "boxes trains in memory (--data-loading memory or auto).")
        from .box_augment import BoxAugmenter, box_preset
        chosen, in_memory = BoxAugmenter(box_preset(augment)), True
    else:
        chosen = preset(augment)
        stored_bytes = sum(len(p) * (chosen.stored_factor(sizing.size) if name == "train" else 1)
                           for name, p in parts.items()) * sizing.channels * math.prod(sizing.size)
        in_memory = loading == "memory" or (
            loading == "auto" and stored_bytes <= memory_budget(device))
    skipped = list(splits.problems)
    if bad_files == "fail" and skipped:  # found while listing the set (masks:PATH, csv:PATH)
        raise UserError(f"{skipped[0][0]}: {skipped[0][1]} (use --bad-files skip to leave such "
                        "files out)")
    parts, more = _decode_splits(parts, sizing, workers, bad_files, keep=in_memory)
    skipped += more
    if preprocess is None and boxed:  # detectors normalise inside: pixels in [0, 1]
        preprocess = Preprocess(sizing.channels, sizing.size, (0.0,) * sizing.channels,
                                (1.0,) * sizing.channels)
    if preprocess is None:
        preprocess = _fit_preprocess(parts.get("train"), sizing, in_memory)
    # Each process trains on its share; every process evaluates the whole of val and test.
    batches = {name: _batches(part, preprocess, chosen if name == "train" else None, batch_size,
                              name == "train", seed, device, in_memory, workers,
                              *((rank, world) if name == "train" else (0, 1)))
               for name, part in parts.items()}
    return Pipeline(preprocess, batches, in_memory, {n: len(p) for n, p in parts.items()}, skipped,
                    splits)


def _decode_splits(parts: dict, sizing: Preprocess, workers: int, bad_files: str, keep: bool):
    """Every file is decoded once up front, so bad ones are reported before training starts.
    With `keep` (in memory) every split becomes uint8 at the model's size; otherwise files
    stay files (minus the bad ones) and tensors stay as they are, for the streaming path."""
    decoded, skipped = _decode_file_splits(parts, sizing, workers, bad_files, keep)
    out = {}
    for name, part in parts.items():
        if name in decoded:
            out[name] = decoded[name]
        elif isinstance(part.labels, list):  # a target dict per image (detection)
            out[name] = Split(*_fit_boxed(part.images, part.labels, sizing))
        else:
            # class-index masks in place of labels (segmentation) take the images' geometry
            labels = (sizing.fit_mask_size(part.labels).contiguous() if part.labels.dim() == 3
                      else part.labels)
            out[name] = Split(sizing.fit_size(part.images).contiguous(), labels) if keep else part
    return out, skipped


def _decode_file_splits(parts: dict, sizing: Preprocess, workers: int, bad_files: str,
                        keep: bool):
    """All splits' files in one pass (one look at the decoded-image cache, one pool of
    threads), then cut back into splits: each split's files are consecutive, so its images
    are a slice of the whole, not a copy."""
    names = [name for name, part in parts.items() if isinstance(part, FileSplit)]
    if not names:
        return {}, []
    files = [file for name in names for file in parts[name].files]
    decoded = decode_files(files, torch.arange(len(files)), sizing, keep=keep,
                           workers=workers, bad_files=bad_files)
    good, out, start, end = decoded.labels, {}, 0, 0  # positions in `files` of the good ones
    for name in names:
        part, first = parts[name], end
        end += len(part)
        count = int(((good >= first) & (good < end)).sum())
        if count == 0:
            first_problem = next(r for f, r in decoded.skipped if f in map(str, part.files))
            raise UserError(f"none of the {len(part)} files could be used as images; "
                            f"the first problem: {first_problem}")
        mine = good[start:start + count] - first
        out[name] = (Split(decoded.images[start:start + count], part.labels[mine]) if keep
                     else FileSplit([part.files[i] for i in mine.tolist()], part.labels[mine]))
        start += count
    return out, decoded.skipped


def _fit_boxed(images: torch.Tensor, targets: list[dict], sizing: Preprocess):
    """Images with their boxes (and masks) at the model's size and channels, in memory."""
    from .boxes import fit
    if tuple(images.shape[-2:]) == tuple(sizing.size) and images.shape[1] == sizing.channels:
        return images, targets
    pairs = [fit(image, target, sizing.size, sizing.channels)
             for image, target in zip(images, targets)]
    return torch.stack([image for image, _ in pairs]).contiguous(), [t for _, t in pairs]


def _fit_preprocess(train, sizing: Preprocess, in_memory: bool) -> Preprocess:
    """Mean and std of the training images at the model's channels and size."""
    if in_memory:
        sample = train.images
    else:  # a fixed random sample is plenty for two numbers per channel
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:STATS_SAMPLE]
        get = (lambda i: decode_image(train.files[i])) if isinstance(train, FileSplit) else (
            lambda i: train.images[i])
        sample = torch.stack([sizing.fit_size(get(int(i))) for i in pick])
    mean, std = channel_stats(sample)
    return Preprocess(sizing.channels, sizing.size, mean, std)


class StreamBatches:
    """A DataLoader that can resume a pass: its generator decides the order and the workers'
    seeds, so replaying a pass from the generator's saved state and dropping the batches
    already used gives the interrupted pass exactly (at the cost of decoding them again)."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.generator = loader.generator
        self.position, self.passes, self._resume_at = 0, 0, 0
        self.limit = 0  # at most this many batches a pass (--limit-batches; 0: all)
        self._pass_start = self.generator.get_state()

    def __len__(self) -> int:
        return min(len(self.loader), self.limit) if self.limit else len(self.loader)

    def __iter__(self):
        self._pass_start = self.generator.get_state()
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(self.passes)
        self.passes += 1
        first, self._resume_at = self._resume_at, 0
        for self.position, batch in enumerate(self.loader, start=1):
            if self.position > first:
                yield batch
            if self.position == self.limit:  # a limited pass ends here, as a full one would
                break
        self.position = 0

    def state_dict(self) -> dict:
        pass_start = self._pass_start if self.position else self.generator.get_state()
        return {"pass_start": pass_start, "position": self.position,
                "passes": self.passes - (1 if self.position else 0)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["pass_start"])
        self._resume_at, self.passes = int(state["position"]), int(state["passes"])


def _batches(part, preprocess, augment, batch_size, shuffle, seed, device, in_memory, workers,
             rank=0, world=1):
    if isinstance(part.labels, list):  # detection: in memory, augmented per image with boxes
        from .box_batches import BoxBatches
        return BoxBatches(part.images, part.labels, batch_size, shuffle=shuffle, seed=seed,
                          device=device, augment=augment, rank=rank, world=world)
    if in_memory:
        return TensorBatches(part.images, part.labels, batch_size, shuffle=shuffle, seed=seed,
                             device=device, transform=batch_transform(preprocess, augment),
                             augment=augment,
                             rank=rank, world=world)
    dataset = StreamDataset(part, preprocess, augment)
    sampler = (DistributedSampler(dataset, world, rank, shuffle=shuffle, seed=seed, drop_last=True)
               if world > 1 else None)
    return StreamBatches(DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed), persistent_workers=workers > 0))
