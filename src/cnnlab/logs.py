"""What a run reports as it goes, through the standard `logging` module: every line goes to the
"cnnlab" logger, so an application can route, filter or silence it like any other library's.

When nobody has configured that logger (the command line, a notebook), `reported()` prints
its lines on stderr for the duration of a run, through tqdm so a progress bar is not torn.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

LOGGER = logging.getLogger("cnnlab")


class _ProgressSafe(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm
        tqdm.write(self.format(record), file=sys.stderr)


@contextmanager
def reported(quiet: bool = False, verbose: bool = False):
    """The "cnnlab" logger's lines on stderr: warnings only if `quiet`, the details too if
    `verbose`, INFO and above otherwise; unless the application gave the logger (or the root
    logger) handlers of its own, which then decide."""
    configured = LOGGER.handlers or logging.getLogger().handlers
    if configured:
        yield
        return
    handler, level = _ProgressSafe(), LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
