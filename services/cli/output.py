"""What commands print: JSON when stdout is not a terminal, rich tables when it is."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def to_terminal() -> bool:
    """Whether stdout is a terminal (people read it) rather than a pipe or file (programs do)."""
    return sys.stdout.isatty()


def json_line(value: Any) -> None:
    """One JSON value on its own line."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


def show(value: Any) -> None:
    """A JSON value: pretty on a terminal, one line otherwise."""
    if to_terminal():
        Console().print_json(data=value)
    else:
        json_line(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], data: Any) -> None:
    """`rows` as a table on a terminal; else `data` as one JSON line."""
    if not to_terminal():
        json_line(data)
        return
    grid = Table(title=title)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    Console().print(grid)


def human_bytes(size: float) -> str:
    """1536 -> '1.5K', as redis-cli --stat says memory."""
    for unit in ("B", "K", "M", "G"):
        if abs(size) < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"  # pragma: no cover
