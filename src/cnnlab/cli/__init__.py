"""The `cnnlab` command: main.py builds the parser and dispatches; course.py and look.py hold
the arguments of the course and look-inside commands.

Wiring only: every command calls one library function, imported when the command runs.
"""
from .main import main

__all__ = ["main"]
