"""What `cnnlab` imports before it answers: help without torch, a training run without the
compiler, torchvision, scikit-learn or matplotlib (seconds each on a 2-core CPU; the times are
in src/cnnlab/bench/startup.py, not here: a shared machine's clock proves nothing).

Each case runs in a fresh interpreter, as a user's command does, and reports which of the
heavy modules it loaded."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from cnnlab.cli.main import COMMANDS

HEAVY = ("torch", "torchvision", "torch._dynamo", "torch.distributed.fsdp", "sklearn",
         "scipy", "matplotlib")
TRAINING_NEEDS_NOT = set(HEAVY) - {"torch"}
# --help of these builds choices from modules that import torch today (train's flags come
# from TrainConfig; kernels and stylize list course/kernels.py's samples): still nothing else.
HELP_WITH_TORCH = {"train", "transfer-compare", "kernels", "stylize"}

RUN = """
import json, sys
from cnnlab.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def loaded(*argv: str, cwd=None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", RUN.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_cnnlab_help_and_a_formula_load_no_heavy_module():
    assert loaded("--help") == set()
    assert loaded("conv-shape", "--input-size", "32", "--kernel-size", "5") == set()


@pytest.mark.slow  # 22 interpreters
@pytest.mark.parametrize("command", [c[0] for c in COMMANDS])
def test_every_commands_help_loads_no_heavy_module(command):
    heavy = loaded(command, "--help")
    if command in HELP_WITH_TORCH:
        heavy -= {"torch"}
    assert heavy == set()


@pytest.mark.slow  # trains (2 batches, twice)
@pytest.mark.parametrize("flags", [[], ["--deterministic"]])
def test_a_training_run_loads_no_compiler_torchvision_sklearn_or_matplotlib(tmp_path, flags):
    out = tmp_path / "run"
    heavy = loaded("train", "--epochs", "1", "--limit-batches", "2", "--quiet",
                   "--out", str(out), *flags)
    assert (out / "curves.png").is_file() and (out / "model.safetensors").is_file()
    assert heavy & TRAINING_NEEDS_NOT == set()


def test_deterministic_mode_without_the_compiler_still_allows_only_deterministic_kernels():
    from cnnlab.training.session import deterministic_mode
    before = torch.are_deterministic_algorithms_enabled()
    try:
        deterministic_mode(compiling=False)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


EAGER = """
import sys, torch
from types import SimpleNamespace
from cnnlab.engine.optim import make_optimizer, make_scheduler
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                          torch.nn.Linear(4 * 6 * 6, 3))
config = SimpleNamespace(optimizer=sys.argv[1], scheduler="onecycle", lr=0.01, momentum=0.9,
                         weight_decay=1e-3, epochs=2, compile=sys.argv[2] == "compile")
optimizer = make_optimizer(net.parameters(), config)
scheduler, _ = make_scheduler(optimizer, config, 5)
g = torch.Generator().manual_seed(1)
for _ in range(10):
    x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(),
            "dynamo": "torch._dynamo" in sys.modules}, sys.argv[3])
"""


@pytest.mark.slow  # two interpreters
@pytest.mark.parametrize("name", ["adam", "nesterov", "adamw"])
def test_the_eager_optimiser_updates_exactly_as_torchs_own(tmp_path, name):
    results = {}
    for mode in ("eager", "compile"):  # compile: torch's optimiser left as it is
        path = tmp_path / f"{mode}.pt"
        done = subprocess.run([sys.executable, "-c", EAGER, name, mode, str(path)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results[mode] = torch.load(path)
    assert not results["eager"]["dynamo"] and results["compile"]["dynamo"]
    for key, value in results["compile"]["net"].items():
        assert torch.equal(results["eager"]["net"][key], value), key
    assert results["eager"]["optimizer"]["param_groups"] == \
        results["compile"]["optimizer"]["param_groups"]
