"""`python -m bench.check` (`make bench-check`): the cost-per-call ratios against the record.

Starts the floor and one cache process, runs the four workloads of the
cost-per-call targets on both side by side (repetitions interleaved, the order
alternating), and prints each ratio against its target and against the ratio
BENCHMARKS.md recorded (its "Cost per call" table). Exits 1 when a ratio is
more than 20% worse than the recorded one. Under 3 minutes; not part of
`make test`, because timings on a shared machine are too noisy for a gate: it
is the check to run before submitting a change to a hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import drivers, kv
from bench.peers import StubPeer
from bench.report import COST_HEADING
from bench.results import FLOOR, GET_C32, GET_P50, MC_STUB, MGET, SET_C64, Row
from bench.servers import BenchError, cache_env, start_floor
from bench.stats import median, percentile
from bench.targets import COST_PER_CALL, Target
from harness.process import REPO
from harness.services import start_service

# A ratio this much worse than the recorded one fails the check.
TOLERANCE = 0.20
Measure = Callable[[StubPeer, kv.Keyspace, float], Awaitable[float]]


async def _get_p50(peer: StubPeer, ks: kv.Keyspace, seconds: float) -> float:
    async def op(i: int) -> None:
        if not await peer.get(ks.key(i)):
            raise BenchError("a preloaded key missed")

    return percentile(await drivers.latencies(op, seconds), 50)


async def _get_c32(peer: StubPeer, ks: kv.Keyspace, seconds: float) -> float:
    return await drivers.throughput(lambda i: peer.get(ks.key(i)), 32, seconds)


async def _mget(peer: StubPeer, ks: kv.Keyspace, seconds: float) -> float:
    ops = await drivers.throughput(lambda i: peer.mget(ks.window(i, kv.MGET_BATCH)), 1, seconds)
    return ops * kv.MGET_BATCH


async def _set_c64(peer: StubPeer, ks: kv.Keyspace, seconds: float) -> float:
    return await drivers.throughput(lambda i: peer.set(ks.key(i)), 64, seconds)


MEASURES: dict[str, Measure] = {
    GET_P50.key: _get_p50,
    GET_C32.key: _get_c32,
    MGET.key: _mget,
    SET_C64.key: _set_c64,
}


def recorded(markdown: str) -> dict[str, float]:
    """The ratios of BENCHMARKS.md's cost-per-call table, by id (absent ones left out)."""
    _, _, section = markdown.partition(COST_HEADING)
    found: dict[str, float] = {}
    for match in re.finditer(r"^\| (\w+) \| [^|]* \| ([0-9.]+) \|", section, re.MULTILINE):
        found.setdefault(match.group(1), float(match.group(2)))
    return found


def regressed(target: Target, ratio: float, before: float) -> bool:
    """More than TOLERANCE worse than `before`, in the target's direction."""
    if target.kind == "max":
        return ratio > before * (1 + TOLERANCE)
    return ratio < before * (1 - TOLERANCE)


def _met(target: Target, ratio: float) -> bool:
    return ratio <= target.bound if target.kind == "max" else ratio >= target.bound


async def _measure_all(
    reps: int, seconds: float, workdir: Path, extra: dict[str, str]
) -> dict[str, float]:
    """Per target id, the median ratio of marketcache over the floor."""
    floor = start_floor(workdir / "floor")
    env = cache_env(workdir / "cache", **extra)
    cache = start_service("cache", env, workdir, label="cache-check")
    peers = [StubPeer(FLOOR, floor.grpc_address), StubPeer(MC_STUB, cache.grpc_address)]
    try:
        ks = kv.Keyspace.build(10_000)
        for peer in peers:
            await kv.preload(peer, ks)
        ratios: dict[str, float] = {}
        for target in COST_PER_CALL:
            measure = MEASURES[target.row.key]
            figures: dict[str, list[float]] = {p.column.key: [] for p in peers}
            for peer in peers:
                await measure(peer, ks, seconds / 3)  # warm-up
            for rep in range(reps):
                # Alternate which server goes first, so neither always meets the busier moment.
                for peer in peers if rep % 2 == 0 else peers[::-1]:
                    figures[peer.column.key].append(await measure(peer, ks, seconds))
            ours, floors = median(figures[MC_STUB.key]), median(figures[FLOOR.key])
            ratios[target.ratio_id] = ours / floors
            print(f"  {_describe(target.row, figures)}", flush=True)
        return ratios
    finally:
        for peer in peers:
            await peer.aclose()
        cache.stop()
        floor.stop()


def _describe(row: Row, figures: dict[str, list[float]]) -> str:
    shown = ", ".join(f"{key} {median(v):,.0f}" for key, v in figures.items())
    return f"{row.label} ({row.unit}): {shown}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: print every ratio; 1 when one regressed past the tolerance."""
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="per repetition")
    parser.add_argument("--record", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument(
        "--cache-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the cache process (e.g. MARKETCACHE_EVENT_LOOP=asyncio)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    before = recorded(args.record.read_text()) if args.record.exists() else {}
    workdir = Path(tempfile.mkdtemp(prefix="marketcache-bench-check-"))
    print("side by side, medians of interleaved repetitions (raw stub / bare grpc.aio floor):")
    try:
        extra = dict(item.split("=", 1) for item in args.cache_env)
        ratios = asyncio.run(_measure_all(args.reps, args.seconds, workdir, extra))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = False
    print(f"{'ratio':10s} {'now':>6s}  {'target':10s} {'recorded':>8s}  verdict")
    for target in COST_PER_CALL:
        ratio = ratios[target.ratio_id]
        bound = ("≤ " if target.kind == "max" else "≥ ") + f"{target.bound:.2f}"
        met = "met" if _met(target, ratio) else "missed"
        previous = before.get(target.ratio_id)
        if previous is None:
            verdict, shown = "no recorded ratio", "-"
        elif regressed(target, ratio, previous):
            verdict, shown, failed = f"REGRESSED (> {TOLERANCE:.0%} worse)", f"{previous:.2f}", True
        else:
            verdict, shown = "ok", f"{previous:.2f}"
        print(f"{target.ratio_id:10s} {ratio:6.2f}  {bound:10s} {shown:>8s}  {met}; {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
