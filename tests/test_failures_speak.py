"""Issue 21's edges, each once failing: every user-caused failure is one sentence and exit
status 2 (or 130 for Ctrl-C), never a traceback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.3, 1.0, 1.5, 2.0, 2.5])
def test_ctrl_c_while_cnnlab_is_still_importing_is_not_a_traceback(tmp_path, after):
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "1",
                                "--out", str(tmp_path / "run")], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
