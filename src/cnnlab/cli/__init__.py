"""The `cnnlab` command: one module per group of commands, the parser built from a table.

Wiring only: every command calls one library function, imported when the command runs, so
`cnnlab --help` imports no torch.
"""
from .main import main

__all__ = ["main"]
