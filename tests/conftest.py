"""Shared fixtures: one real training run with the default settings, reused by many tests."""
from __future__ import annotations

import pytest

from cnnlab import TrainConfig, train


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """Layout choices (accel/layout.py) remembered in the test session's folder, never in the
    user's ~/.cache: the tests neither read a user's choices nor leave theirs behind."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """`cnnlab train` with no flags (30 epochs of LeNet-5 on digits: a few seconds on a CPU)."""
    out = tmp_path_factory.mktemp("runs") / "default"
    return train(TrainConfig(out=str(out)), quiet=True)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory):
    """A two-epoch run, for tests that need a run folder but not a good model."""
    out = tmp_path_factory.mktemp("runs") / "short"
    return train(TrainConfig(out=str(out), epochs=2), quiet=True)
