"""One process trains a run folder at a time.

RUN/.cnnlab-lock is held with the operating system's advisory lock (flock), not by its mere
existence, so the lock ends with the process however it ends (SIGKILL included) and never
goes stale; the file holds the owner's pid for the message a second process gets. Where
there is no flock (Windows), runs are not locked, as before.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

LOCK = ".cnnlab-lock"


@contextmanager
def training_lock(run_dir: Path):
    """Hold `run_dir` for this process, or refuse in one sentence naming the holder's pid."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    handle = open(Path(run_dir) / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise UserError(f"{run_dir} is being trained by another process (pid {owner}); wait "
                        "for it to finish, or stop it, then try again.") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock; the small file stays for the next holder
