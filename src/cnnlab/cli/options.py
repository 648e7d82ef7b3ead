"""The parsed arguments of a command as the keyword arguments of the library function it calls."""
from __future__ import annotations

import argparse

# argparse's own bookkeeping and the output flags every command shares (main.py handles
# them); everything else a command's parser defines is a library keyword
_NOT_OPTIONS = {"json", "quiet", "verbose", "command", "run_command", "explain_command"}


def options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}
