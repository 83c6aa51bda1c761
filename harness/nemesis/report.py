"""The nemesis table of RELIABILITY.md: one row per fault class and database, from a run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from harness import page_sections
from harness.nemesis.checks import RoundResult
from harness.nemesis.faults import REGISTRY
from harness.page_sections import put_section, run_stamp

BEGIN = "<!-- nemesis:begin (written by python -m harness.nemesis --reliability) -->"
END = "<!-- nemesis:end -->"


def render(results: Sequence[RoundResult], seconds: float) -> str:
    """The section, markers included."""
    lines = [
        BEGIN,
        "## Nemesis: random faults against three caches",
        "",
        f"`make nemesis` run: {run_stamp()}, {seconds / 60:.1f} minutes, "
        f"{len(results)} rounds. Each round: traffic (a writer per key through the library "
        "client or a raw stub, readers through both, near-cache readers), one fault on a random "
        "node, the heal, recovery, every key read back; then per key the linearizability "
        "check, acknowledged-never-lost, the near cache's bounded staleness (1 s), and the "
        "lease table's epochs (polled every 0.5 s) never going backwards. Lease 2 s. The "
        "unavailability window is the longest a key went without an acknowledged write from "
        "the fault to the end of the round, as the clients saw it (a call stuck at a silent "
        "node counts until its 2 s deadline; max and median over rounds); keys unrecovered are "
        "those with no acknowledged write between the fault and the settle, a few seconds "
        "after the cluster recovered. "
        "Refused writes were answered RESOURCE_EXHAUSTED, known not applied (a full disk): they "
        "are not among the operations, and none may ever be read back.",
        "",
        "| fault | database | rounds | operations | acknowledged writes | refused writes "
        "| lost writes | stale reads | unavailability window (max / median, s) "
        "| keys unrecovered at the settle | other violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[RoundResult]] = {}
    for r in results:
        groups.setdefault((r.fault, r.database), []).append(r)
    for (fault, database), rounds in sorted(groups.items()):
        what = REGISTRY[fault].what if fault in REGISTRY else fault
        windows = [r.window for r in rounds]
        other = sum(len(r.problems) for r in rounds) - sum(r.lost + r.stale for r in rounds)
        lines.append(
            f"| {fault}: {what} | {database} | {len(rounds)} "
            f"| {sum(r.operations for r in rounds)} | {sum(r.acknowledged for r in rounds)} "
            f"| {sum(r.refused for r in rounds)} "
            f"| {sum(r.lost for r in rounds)} | {sum(r.stale for r in rounds)} "
            f"| {max(windows):.1f} / {statistics.median(windows):.1f} "
            f"| {sum(r.unrecovered for r in rounds)} | {max(0, other)} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, results: Sequence[RoundResult], seconds: float) -> None:
    """Put the section into `path`, replacing the one there (or appended)."""
    put_section(path, BEGIN, END, render(results, seconds))


def kept_section(path: Path) -> str:
    """The section as it stands in `path` ("" when none): other renderers keep it."""
    return page_sections.kept_section(path, BEGIN, END)
