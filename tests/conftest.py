"""Shared fixtures: one real training run with the default settings, reused by many tests;
the fast path pinned to contiguous float32 outside its own tests; the markers' effects."""
from __future__ import annotations

import dataclasses
import functools

import pytest
import torch

from cnnlab import TrainConfig, train
from cnnlab.accel import fastpath

# What an 'auto' layout and number format become in the tests not about the fast path.
PINNED = {"memory_format": "contiguous", "precision": "fp32"}
REAL_SETUP = fastpath.setup


@pytest.hookimpl(tryfirst=True)  # before -m selects by the markers added here
def pytest_collection_modifyitems(config, items):
    """test_fastpath.py is about the fast path as a whole: marked `fastpath`, as other tests
    about it may be by hand. `gpu` tests are skipped where PyTorch sees no CUDA GPU."""
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.path.name == "test_fastpath.py":
            item.add_marker(pytest.mark.fastpath)
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(no_gpu)


@functools.wraps(REAL_SETUP)
def pinned_setup(config, *args, **kwargs):
    """fastpath.setup on the config with 'auto' layout and number format made contiguous and
    fp32: nothing the test then computes depends on a timing, so on the machine's load."""
    fixed = {name: value for name, value in PINNED.items() if getattr(config, name) == "auto"}
    return REAL_SETUP(dataclasses.replace(config, **fixed), *args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """Layout choices (accel/layout.py) remembered in the test session's folder, never in the
    user's ~/.cache: the tests neither read a user's choices nor leave theirs behind."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def pinned_fast_path():
    """Every run trained in this process (session fixtures' too) without an explicit layout
    or number format trains contiguous float32; `fastpath` tests get the real choice back
    (real_fast_path). Runs started as subprocesses choose by timing as users' runs do."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastpath, "setup", pinned_setup)
        yield


@pytest.fixture(autouse=True)
def real_fast_path(request, monkeypatch):
    """The fast path's own tests (marked `fastpath`) see fastpath.setup choose by timing."""
    if request.node.get_closest_marker("fastpath"):
        monkeypatch.setattr(fastpath, "setup", REAL_SETUP)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, pinned_fast_path):
    """`cnnlab train` with no flags (30 epochs of LeNet-5 on digits: a few seconds on a CPU),
    in contiguous float32."""
    out = tmp_path_factory.mktemp("runs") / "default"
    return train(TrainConfig(out=str(out)), quiet=True)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, pinned_fast_path):
    """A two-epoch run, for tests that need a run folder but not a good model."""
    out = tmp_path_factory.mktemp("runs") / "short"
    return train(TrainConfig(out=str(out), epochs=2), quiet=True)
