"""Reading the tables of a generated BENCHMARKS.md back, to check their shape."""

from __future__ import annotations

import re

_MARKERS = ("absent", "not measured", "n/a")
_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?( \(.*\))?$")


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Every pipe table under its `## ` heading: a list of rows (header first), cells stripped."""
    out: dict[str, list[list[str]]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if all(set(c) <= set("-: ") for c in cells):
                continue  # the alignment row
            out.setdefault(heading, []).append(cells)
    return out


def is_figure_or_reason(cell: str) -> bool:
    """A number (maybe with a parenthesised note) or an explicit absent/not measured/n/a."""
    return bool(_NUMBER.match(cell)) or cell.startswith(_MARKERS)


def number(cell: str) -> float:
    """The number at the start of a figure cell."""
    return float(cell.split(" ", 1)[0].replace(",", ""))
