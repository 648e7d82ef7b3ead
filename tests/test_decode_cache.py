"""A folder of images decoded once: the second run reads the decoded-image cache, a changed
file is decoded again alone, a damaged cache is rebuilt, bad files are still reported."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.data import load_dataset
from cnnlab.data.decode import decode_files
from cnnlab.data.decode_cache import cache_root
from cnnlab.data.images import decode_image
from cnnlab.data.pipeline import build_pipeline
from cnnlab.data.transforms import Preprocess
from cnnlab.errors import UserError

from bad_images import write_bad_files, write_odd_modes


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def folder(tmp_path) -> Path:
    """Three classes of 8 random 16x16 colour PNGs."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name in ("cat", "dog", "fox"):
        (root / name).mkdir(parents=True)
        for k in range(8):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / name / f"{k}.png")
    return root


def load(root: Path, caplog, size=16, channels=3):
    """The pipeline of `folder:root` in memory, and what the decoding said."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        pipeline = build_pipeline(load_dataset(f"folder:{root}"), channels, (size, size),
                                  batch_size=4, device=torch.device("cpu"), loading="memory",
                                  workers=1)
    return pipeline, " | ".join(r.getMessage() for r in caplog.records)


def images(pipeline) -> torch.Tensor:
    return torch.cat([inputs for inputs, _ in pipeline.batches["test"]])


def test_the_second_load_reads_the_cache_and_gives_the_same_images(folder, caplog):
    first, said = load(folder, caplog)
    assert "0 from the cache, 24 decoded" in said
    second, said = load(folder, caplog)
    assert "24 from the cache, 0 decoded" in said
    assert torch.equal(images(first), images(second))
    assert first.preprocess == second.preprocess


def test_a_changed_file_is_decoded_again_alone(folder, caplog):
    load(folder, caplog)
    changed = folder / "dog" / "3.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(changed)
    os.utime(changed, ns=(1, 1))  # a time of its own, as a copy from elsewhere may carry
    _, said = load(folder, caplog)
    assert "23 from the cache, 1 decoded" in said
    (folder / "fox" / "new.png").write_bytes(changed.read_bytes())  # a file added: only it
    _, said = load(folder, caplog)
    assert "24 from the cache, 1 decoded" in said
    # what the cache now holds for those two files is the new red picture
    files = sorted(folder.rglob("*.png"))
    sizing = Preprocess(3, (16, 16), (0.0,) * 3, (1.0,) * 3)
    cached = decode_files(files, torch.zeros(len(files), dtype=torch.long), sizing, keep=True,
                          workers=0)
    assert (cached.from_cache, cached.decoded) == (25, 0)
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 16, 16)
    assert sum(torch.equal(image, red) for image in cached.images) == 2


def test_another_size_or_channels_is_decoded_anew(folder, caplog):
    load(folder, caplog)
    assert "0 from the cache, 24 decoded" in load(folder, caplog, size=12)[1]
    assert "0 from the cache, 24 decoded" in load(folder, caplog, channels=1)[1]
    assert "24 from the cache, 0 decoded" in load(folder, caplog, size=12)[1]


@pytest.mark.parametrize("damage", ["index", "pixels", "missing pixels"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(folder, caplog, damage):
    first, _ = load(folder, caplog)
    (entry,) = cache_root().iterdir()
    (pixels,) = entry.glob("pixels-*.npy")
    if damage == "index":
        (entry / "index.json").write_text('{"format": 1, "files": [')
    elif damage == "pixels":
        pixels.write_bytes(pixels.read_bytes()[:300])
    else:
        pixels.unlink()
    rebuilt, said = load(folder, caplog)
    assert "is damaged" in said and "it is rebuilt" in said and "24 decoded" in said
    assert torch.equal(images(first), images(rebuilt))
    assert "24 from the cache, 0 decoded" in load(folder, caplog)[1]
    assert len(list(entry.glob("pixels-*.npy"))) == 1  # the damaged one is gone


def test_bad_files_are_reported_on_a_cached_run_too(folder, caplog):
    reasons = write_bad_files(folder / "cat")
    first, said = load(folder, caplog)
    assert "0 from the cache, 28 decoded (4 of them unusable)" in said
    second, said = load(folder, caplog)
    assert "24 from the cache, 4 decoded (4 of them unusable)" in said
    assert second.skipped == first.skipped
    assert sorted(Path(f).name for f, _ in second.skipped) == sorted(reasons)


def test_odd_files_decode_as_decode_image_does(tmp_path):
    """The fast path for plain 8-bit images and decode_image's for the rest give the pixels
    the streaming path (decode_image, then the model's size) gives."""
    names = write_odd_modes(tmp_path / "odd")
    Image.fromarray(np.full((12, 16, 3), 77, np.uint8)).save(tmp_path / "odd" / "plain.png")
    Image.fromarray(np.full((12, 16), 99, np.uint8)).save(tmp_path / "odd" / "plain-grey.png")
    files = sorted((tmp_path / "odd").iterdir())
    assert len(files) == len(names) + 2
    for channels, size in ((3, (12, 16)), (1, (12, 16)), (3, (20, 20)), (1, (7, 9))):
        sizing = Preprocess(channels, size, (0.0,) * channels, (1.0,) * channels)
        decoded = decode_files(files, torch.zeros(len(files), dtype=torch.long), sizing,
                               keep=True, workers=0, cache=False)
        expected = torch.stack([sizing.fit_size(decode_image(f)) for f in files])
        assert torch.equal(decoded.images, expected), (channels, size)


def test_an_unwritable_cache_costs_only_the_next_runs_decoding(folder, caplog, tmp_path,
                                                               monkeypatch):
    (tmp_path / "cache-file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-file"))
    pipeline, said = load(folder, caplog)
    assert "could not save the decoded-image cache" in said
    assert sum(pipeline.sizes.values()) == 24


@pytest.mark.slow  # two short training runs
def test_a_second_train_on_the_same_folder_says_it_used_the_cache(folder, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        for run in ("first", "second"):
            assert main(["train", "--dataset", f"folder:{folder}", "--model", "lecture_cnn",
                         "--epochs", "1", "--out", str(tmp_path / run)]) == 0
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoded images")]
    assert [line.split(" in ")[0] for line in said] == [
        "decoded images: 0 from the cache, 24 decoded",
        "decoded images: 24 from the cache, 0 decoded"]


def test_threads_decode_the_same_images_and_report_the_same_files(folder, monkeypatch):
    """Large images go to a pool of threads (here every image, with the probe and the chunks
    made small): the images, their order and the files reported are those of one thread."""
    import cnnlab.data.decode as decode
    write_bad_files(folder / "dog")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    sizing = Preprocess(3, (10, 10), (0.0,) * 3, (1.0,) * 3)
    run = lambda workers: decode_files(files, torch.arange(len(files)), sizing,  # noqa: E731
                                       keep=True, workers=workers, cache=False)
    alone = run(0)
    monkeypatch.setattr(decode, "THREADED_ABOVE", 0.0)
    monkeypatch.setattr(decode, "PROBE", 2)
    monkeypatch.setattr(decode, "CHUNK", 3)
    threaded = run(3)
    assert torch.equal(threaded.images, alone.images) and torch.equal(threaded.labels, alone.labels)
    assert threaded.skipped == alone.skipped and len(alone.skipped) == 4
    with pytest.raises(UserError, match="use --bad-files skip"):
        decode_files(files, torch.arange(len(files)), sizing, keep=True, workers=3,
                     bad_files="fail", cache=False)
