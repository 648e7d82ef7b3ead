"""Small matrices typed on the command line, the way the slides print them.

Numbers in a row are separated by spaces or commas, rows by ';' and channels by '|':

    "2 5 8; 1 3 4; 0 4 1"            one 3x3 channel
    "1 2; 3 4 | 5 6; 7 8"            two 2x2 channels

Whole numbers stay Python ints so a worked example's sums are exact; anything else is a float.
"""
from __future__ import annotations

from ..errors import UserError

Matrix = list[list[float]]


def _number(text: str, what: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"'{text}' in {what} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UserError(f"'{text}' in {what} is not a finite number.")
    return value


def _channel(text: str, what: str) -> Matrix:
    rows = [row.replace(",", " ").split() for row in text.split(";")]
    rows = [row for row in rows if row] if text.strip().endswith(";") else rows
    if not rows or any(not row for row in rows):
        raise UserError(f"{what} has an empty row; write rows like '1 2 3; 4 5 6'.")
    if len({len(row) for row in rows}) != 1:
        lengths = ", ".join(str(len(row)) for row in rows)
        raise UserError(f"every row of {what} needs the same number of values, got rows of {lengths}.")
    return [[_number(v, what) for v in row] for row in rows]


def parse_matrices(text: str, what: str = "the input") -> list[Matrix]:
    """'a b; c d | e f; g h' -> one matrix per channel, all the same shape."""
    if not str(text).strip():
        raise UserError(f"{what} is empty; write rows like '1 2 3; 4 5 6'.")
    channels = [_channel(part, what) for part in str(text).split("|")]
    shapes = {(len(c), len(c[0])) for c in channels}
    if len(shapes) != 1:
        raise UserError(f"every channel of {what} needs the same height and width.")
    return channels


def shape_text(channels: list[Matrix]) -> str:
    return f"{len(channels)}x{len(channels[0])}x{len(channels[0][0])}"


def fmt(value) -> str:
    """A number as a learner would write it: 7, -0.5, 0.111111."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def matrix_text(matrix: Matrix) -> str:
    """Inline form, the same notation the input is typed in: '[1 2; 3 4]'."""
    return "[" + "; ".join(" ".join(fmt(v) for v in row) for row in matrix) + "]"


def grid_text(matrix: Matrix, indent: str = "  ") -> str:
    """Right-aligned columns, for the output map."""
    cells = [[fmt(v) for v in row] for row in matrix]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + " ".join(c.rjust(width) for c in row) for row in cells)
