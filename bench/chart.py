"""bench/results.png: the side-by-side figures as grouped bars (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

from bench.results import (
    COLUMNS,
    GET_C16,
    GET_C64,
    GET_P50,
    GET_P99,
    MEMORY,
    MGET,
    MIXED,
    SET_C1,
    SET_C64,
    SNAP_COLD_P50,
    SNAP_WARM_P50,
    Results,
    Row,
)

COLORS = {
    "floor": "#7f7f7f",
    "redis": "#d62728",
    "redis_async": "#ff9896",
    "redis_aof": "#8c564b",
    "mc_client": "#1f77b4",
    "mc_stub": "#17becf",
}


def _grouped(ax: Any, results: Results, rows: Sequence[Row], title: str, unit: str) -> None:
    """One group of bars per row, one bar per peer that has a figure."""
    columns = [c for c in COLUMNS if any(results.cell(r, c).value is not None for r in rows)]
    width = 0.8 / max(1, len(columns))
    for i, column in enumerate(columns):
        xs, heights = [], []
        for j, row in enumerate(rows):
            value = results.cell(row, column).value
            if value is not None:
                xs.append(j + (i - (len(columns) - 1) / 2) * width)
                heights.append(value)
        ax.bar(xs, heights, width, label=column.label, color=COLORS.get(column.key))
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([_short(r.label) for r in rows], fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    if not columns:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)


def _short(label: str) -> str:
    return label.replace("Durable Set, ", "").replace("Get hit, ", "").replace(", ", "\n")


def _snapshot(ax: Any, results: Results) -> None:
    rows = [SNAP_WARM_P50, SNAP_COLD_P50]
    values = [results.system_cell(r).value for r in rows]
    present = [(r, v) for r, v in zip(rows, values, strict=True) if v is not None]
    ax.set_title("REST sector snapshot p50 (marketcache)", fontsize=10)
    if not present:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        return
    ax.bar(
        [("warm" if r is SNAP_WARM_P50 else "cold") for r, _ in present],
        [v for _, v in present],
        color=["#1f77b4", "#aec7e8"][: len(present)],
    )
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def draw(results: Results, path: Path) -> None:
    """Write the chart to `path` (PNG)."""
    matplotlib.use("Agg")  # no display: the chart is a file
    import matplotlib.pyplot as plt  # after the backend is chosen
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    _grouped(axes[0][0], results, [GET_P50, GET_P99], "Get hit latency, sequential", "µs")
    _grouped(axes[0][1], results, [GET_C16, GET_C64, MIXED], "Throughput", "ops/s")
    _grouped(axes[0][2], results, [SET_C1, SET_C64], "Durable Set throughput", "ops/s")
    _grouped(axes[1][0], results, [MGET], "MGet of 100 keys", "keys/s")
    _grouped(axes[1][1], results, [MEMORY], "Memory per key (RSS delta)", "bytes")
    _snapshot(axes[1][2], results)
    # p99 under load can be ten times p50: a log axis keeps both readable.
    axes[0][0].set_yscale("log")
    axes[0][0].set_ylabel("µs (log)", fontsize=8)
    measured = {column for (_, column), cell in results.kv.items() if cell.value is not None}
    present = [c for c in COLUMNS if c.key in measured]
    handles = [Patch(color=COLORS.get(c.key), label=c.label) for c in present]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(handles)), fontsize=9)
    date = results.conditions.get("date", "")
    fig.suptitle(f"marketcache benchmarks ({results.mode} mode, {date})", fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
