"""The layout's promises: imports flow one way (import-linter's contracts in pyproject.toml),
and the commands that only explain or list things start without torch or the training stack."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on `root`/src/cnnlab with `root`/pyproject.toml's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_a_reversed_import_breaks_the_layers_contract(tmp_path):
    """The check is real: the engine importing the training package (a layer above it) fails."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "cnnlab", src / "cnnlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    loop = src / "cnnlab" / "engine" / "loop.py"
    loop.write_text(loop.read_text() + "\nfrom ..training import run  # reversed on purpose\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "cnnlab.engine is not allowed to import cnnlab.training" in done.stdout
    assert str(src) in subprocess.run(  # and it was the copy that was checked
        [sys.executable, "-c", "import cnnlab; print(cnnlab.__file__)"], cwd=src,
        env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True).stdout


def _modules_after(argv: list[str]) -> set[str]:
    """The modules a `cnnlab ARGV` process has imported when it is done."""
    code = ("import sys\nfrom cnnlab.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\nprint(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    return set(done.stdout.split())


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_cnnlab_help_imports_no_torch(argv):
    modules = _modules_after(argv)
    assert "cnnlab.cli.main" in modules
    assert "torch" not in modules and "numpy" not in modules


@pytest.mark.parametrize("argv", [["conv-shape", "--input-size", "32", "--kernel-size", "5"],
                                  ["explain", "conv", "--input", "1 2; 3 4", "--kernel", "1"],
                                  ["datasets"], ["models", "--json"]])
def test_course_and_catalogue_commands_do_not_import_the_training_stack(argv):
    modules = _modules_after(argv)
    stack = {"cnnlab.engine.loop", "cnnlab.training.run", "cnnlab.training.session",
             "cnnlab.runs.folder", "cnnlab.data.pipeline"}
    assert modules and not modules & stack, sorted(modules & stack)
