"""Writing a file so that a crash at any moment leaves either the old file or the new, never half.

The data goes to a temporary name in the same folder, is flushed to disk, then renamed over
the old file. Run folders, caches and pictures are all written this way.

Only regular files are ever replaced: a path that names a symlink, a device (/dev/null) or a
folder is refused, since renaming over it would destroy something cnnlab did not make. The
temporary's name carries cnnlab's prefix and the writer's pid, so the clean-up of a killed
save removes only cnnlab's own leftovers of processes that are gone, never a user's
`.tmp-notes.txt` or a save another live process is making.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path

from .errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: the process's umask, for the permissions of new files
TEMP_PREFIX = ".cnnlab-tmp-"
# A full disk, a full quota, or a file size limit (ulimit -f): no room, whatever the cause.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    refuse_unless_regular(path)
    _remove_stale_temporaries(path.parent)
    fd, temp = tempfile.mkstemp(dir=path.parent,
                                prefix=f"{TEMP_PREFIX}{os.getpid()}-{path.name}.")
    try:
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        if exc.errno in NO_ROOM:
            raise UserError(f"there is no room to write {path} ({len(data):,} bytes: "
                            f"{exc.strerror.lower()}); nothing was lost, since what was there "
                            "before is intact: free some space and run the command again."
                            ) from None
        raise
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def refuse_unless_regular(path: Path) -> None:
    """A path cnnlab may write: absent, or a regular file (not a link, device or folder)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode)
                else "a device or other special file")
        raise UserError(f"{path} is {kind}, not a regular file; cnnlab writes only new files "
                        "or files it replaces whole, so give a file name there.")


def _remove_stale_temporaries(folder: Path) -> None:
    """cnnlab's own leftovers of a save killed mid-write, by a process that is gone; the real
    files are untouched by them."""
    for leftover in folder.glob(TEMP_PREFIX + "*"):
        match = _TEMP_NAME.match(leftover.name)
        if match and not _alive(int(match.group(1))) and leftover.is_file():
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end the process there: leave its leftovers
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True   # exists under another user (or cannot be checked): leave it
    return True
