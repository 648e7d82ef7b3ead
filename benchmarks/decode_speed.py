"""Decoding a folder of images: PIL in one process against cnnlab's decode_files, then cached.

    .venv/bin/python benchmarks/decode_speed.py [--small 6000] [--large 1000] [--rounds 2]

Two folders are written to a temporary directory (not timed): `--small` 32x32 PNGs of the
shapes set, decoded at 32x32, and `--large` 500x375 JPEGs (quality 90), decoded to 224x224.
Contenders, interleaved for `--rounds` rounds (best round kept: the machine is shared):
- pil: the plain loop, Image.open + convert('RGB') (+ resize) + numpy, into one array;
- cnnlab, one thread (--workers 0) and as it runs by default (threads for large images);
- cnnlab, cached: the second run on the folder, reading the decoded-image cache.
Writes benchmarks/results/decode_speed.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.decode import decode_files, default_workers
from cnnlab.data.shapes import CLASSES, generate_shapes
from cnnlab.data.transforms import Preprocess

RESULTS = Path(__file__).parent / "results"


def write_folder(root: Path, count: int, image_size: int, stored: tuple[int, int], suffix: str):
    data = generate_shapes(count, image_size, seed=0)
    for index, (image, label) in enumerate(zip(data.images.permute(0, 2, 3, 1).numpy(),
                                               data.labels.tolist())):
        picture = Image.fromarray(image)
        if picture.size != stored:
            picture = picture.resize(stored, Image.BICUBIC)
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        picture.save(root / CLASSES[label] / f"{index:05d}{suffix}", quality=90)
    return sorted(p for p in root.rglob("*") if p.is_file())


def pil_loop(files, size: int) -> None:
    out = np.empty((len(files), size, size, 3), np.uint8)
    for index, path in enumerate(files):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            out[index] = np.asarray(image)


def cnnlab(files, size: int, workers: int, cache: bool) -> None:
    sizing = Preprocess(3, (size, size), (0.0,) * 3, (1.0,) * 3)
    decode_files(files, torch.zeros(len(files), dtype=torch.long), sizing, keep=True,
                 workers=workers, cache=cache)


def measure(files, size: int, rounds: int) -> dict:
    contenders = {"pil_one_process": lambda: pil_loop(files, size),
                  "cnnlab_one_thread": lambda: cnnlab(files, size, 0, False),
                  "cnnlab_default": lambda: cnnlab(files, size, default_workers(), False),
                  "cnnlab_cached": lambda: cnnlab(files, size, default_workers(), True)}
    cnnlab(files, size, 0, True)  # fills the cache the cached contender reads
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(seconds, 3) for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=6000)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as temp:
        os.environ["XDG_CACHE_HOME"] = str(Path(temp) / "cache")  # not the user's cache
        small = write_folder(Path(temp) / "small", args.small, 32, (32, 32), ".png")
        large = write_folder(Path(temp) / "large", args.large, 128, (500, 375), ".jpg")
        sets = {f"{args.small} PNGs of 32x32 at 32x32": measure(small, 32, args.rounds),
                f"{args.large} JPEGs of 500x375 at 224x224": measure(large, 224, args.rounds)}
    result = {"sets": sets, "cpus": os.cpu_count(), "workers": default_workers(),
              "load_average": load, "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decode_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Decoding a folder, seconds (best of {args.rounds}; {result['cpus']} CPUs, load "
             f"average {load[0]} at the start, {result['load_average_end'][0]} at the end)", "",
             "| images | " + " | ".join(next(iter(sets.values()))) + " |",
             "|---|" + "---|" * len(next(iter(sets.values())))]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row.values()) + " |"
              for name, row in sets.items()]
    (RESULTS / "decode_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
