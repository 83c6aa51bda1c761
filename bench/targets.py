"""The issue's targets, checked against a run's figures (reported, never asserted)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results import (
    FLOOR,
    GET_C32,
    GET_P50,
    MC_STUB,
    MEMORY,
    MGET,
    REDIS,
    SET_C64,
    SNAP_SPEEDUP,
    SNAP_WARM_P50,
    STAMPEDE_CALLS,
    Cell,
    Column,
    Results,
    Row,
)


@dataclass(frozen=True)
class Target:
    """A bound on one figure: absolute, or as a ratio to a reference figure."""

    label: str
    row: Row
    # None: a system row (marketcache only).
    column: Column | None
    reference: tuple[Row, Column] | None
    bound: float
    # "max": figure (or ratio) <= bound; "min": >= bound; "exact": == bound in every repetition.
    kind: str
    # The cost-per-call ratios (#22) carry an id: BENCHMARKS.md lists them under it,
    # and `make bench-check` (bench/check.py) compares its own run with them.
    ratio_id: str = ""


@dataclass(frozen=True)
class Verdict:
    """How one target came out."""

    target: Target
    measured: Cell
    reference: Cell | None
    ratio: float | None
    # None when it could not be judged (a figure is missing).
    met: bool | None


# Spelled as an escape because ruff (RUF001) flags the literal character as ambiguous.
TIMES = "\u00d7"

TARGETS = (
    Target(
        f"Get p50 ≤ 1.10 {TIMES} floor", GET_P50, MC_STUB, (GET_P50, FLOOR), 1.10, "max", "get_p50"
    ),
    Target(
        f"Get at 32 ≥ 0.85 {TIMES} floor",
        GET_C32,
        MC_STUB,
        (GET_C32, FLOOR),
        0.85,
        "min",
        "get_c32",
    ),
    Target(f"MGet of 100 ≥ 0.9 {TIMES} floor", MGET, MC_STUB, (MGET, FLOOR), 0.9, "min", "mget100"),
    Target(
        f"Durable Set at 64 ≥ 0.6 {TIMES} floor unary Set",
        SET_C64,
        MC_STUB,
        (SET_C64, FLOOR),
        0.6,
        "min",
        "set_c64",
    ),
    Target("Snapshot warm p50 ≤ 5 ms", SNAP_WARM_P50, None, None, 5.0, "max"),
    Target(f"Snapshot warm ≥ 20 {TIMES} faster than cold", SNAP_SPEEDUP, None, None, 20.0, "min"),
    Target(f"Memory per key ≤ 2 {TIMES} Redis", MEMORY, MC_STUB, (MEMORY, REDIS), 2.0, "max"),
    Target("Exactly 1 upstream call per stampede", STAMPEDE_CALLS, None, None, 1.0, "exact"),
)


def _cell(results: Results, row: Row, column: Column | None) -> Cell:
    return results.system_cell(row) if column is None else results.cell(row, column)


def judge(results: Results, target: Target) -> Verdict:
    """Compare the figure (or its ratio to the reference) with the bound."""
    measured = _cell(results, target.row, target.column)
    reference = _cell(results, *target.reference) if target.reference else None
    if measured.value is None or (reference is not None and reference.value is None):
        return Verdict(target, measured, reference, None, None)
    figure = measured.value
    ratio = None
    if reference is not None:
        assert reference.value is not None
        if reference.value == 0:
            return Verdict(target, measured, reference, None, None)
        ratio = figure / reference.value
        figure = ratio
    if target.kind == "max":
        met = figure <= target.bound
    elif target.kind == "min":
        met = figure >= target.bound
    else:
        met = all(rep == target.bound for rep in measured.reps or (figure,))
    return Verdict(target, measured, reference, ratio, met)


COST_PER_CALL = tuple(t for t in TARGETS if t.ratio_id)


def judge_all(results: Results) -> list[Verdict]:
    """Every target's verdict, in the issue's order."""
    return [judge(results, target) for target in TARGETS]
