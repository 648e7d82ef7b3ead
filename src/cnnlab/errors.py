"""Errors a user can cause: a bad name, a bad file, a bad number.

The command line prints the one sentence of a UserError and exits with status 2;
anything else is a programming error and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in what the user asked for, explained in one sentence."""


def unknown_name(kind: str, name: str, valid) -> UserError:
    """'unknown model 'x'; choose one of: a, b, c.' -- the valid names make the fix obvious."""
    return UserError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(valid))}.")
