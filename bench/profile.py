"""`python -m bench.profile WORKLOAD`: where a marketcache server spends its CPU, against the floor.

Runs one key-value workload on the floor and on a cache process, prints the
server's CPU per operation for each (psutil), and, when py-spy is installed,
samples the cache process and prints the heaviest Python frames. Used to
explain a missed target; it measures nothing BENCHMARKS.md reports.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil

from bench import drivers, kv
from bench.peers import StubPeer
from bench.results import FLOOR, MC_STUB
from bench.servers import cache_env, start_floor
from harness.process import ServiceProcess
from harness.services import start_service

# The frame under which the event loop runs callbacks: a sample below it is busy.
BUSY = "Handle._run (asyncio/events.py)"
RUNNER = "Runner.run (asyncio/runners.py)"
# workload -> (concurrency, op factory)
OpFactory = Callable[[StubPeer, kv.Keyspace], drivers.AsyncOp]
WORKLOADS: dict[str, tuple[int, OpFactory]] = {
    "get": (1, lambda p, ks: lambda i: p.get(ks.key(i))),
    "get64": (64, lambda p, ks: lambda i: p.get(ks.key(i))),
    "mget": (1, lambda p, ks: lambda i: p.mget(ks.window(i, kv.MGET_BATCH))),
    "set1": (1, lambda p, ks: lambda i: p.set(ks.key(i))),
    "set64": (64, lambda p, ks: lambda i: p.set(ks.key(i))),
}


def py_spy() -> str | None:
    """py-spy next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class Counted:
    """A workload's op on a preloaded, warmed-up server, counting its calls."""

    def __init__(self, op: drivers.AsyncOp, concurrency: int) -> None:
        self._op = op
        self.concurrency = concurrency
        self.count = 0

    @classmethod
    async def prepare(cls, peer: StubPeer, workload: str) -> Counted:
        concurrency, factory = WORKLOADS[workload]
        ks = kv.Keyspace.build(10_000)
        await kv.preload(peer, ks)
        op = factory(peer, ks)
        await drivers.throughput(op, concurrency, 1.0)  # warm-up
        return cls(op, concurrency)

    async def __call__(self, i: int) -> None:
        self.count += 1
        await self._op(i)

    async def run(self, seconds: float) -> float:
        """Ops per second over `seconds`."""
        return await drivers.throughput(self, self.concurrency, seconds)


async def measure(
    proc: ServiceProcess, peer: StubPeer, workload: str, seconds: float, spy_out: Path | None
) -> str:
    """Run the workload; the line to print. With `spy_out`, py-spy samples the server."""
    counted = await Counted.prepare(peer, workload)
    spy = None
    binary = py_spy()
    if spy_out is not None and binary is not None:
        argv = ["record", "--pid", str(proc.pid), "--duration", str(int(seconds))]
        argv += ["--format", "raw", "--rate", "250", "--nonblocking", "-o", str(spy_out)]
        spy = await asyncio.create_subprocess_exec(
            binary, *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
    before = _cpu(proc.pid)
    rate = await counted.run(seconds)
    used = _cpu(proc.pid) - before
    if spy is not None:
        await spy.wait()
    return f"{rate:9.0f} ops/s   server CPU {1e6 * used / max(counted.count, 1):7.0f} µs/op"


def top_frames(raw: Path, limit: int = 30) -> list[str]:
    """Share of the busy event-loop samples per function under it, heaviest first."""
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        # Under uvloop callbacks run from C: the loop thread's samples hang under the
        # runner (py-spy leaves idle samples out, so every one of them is busy).
        anchor = BUSY if BUSY in frames else RUNNER if RUNNER in frames else None
        if anchor is None:
            continue  # another thread
        busy += int(count)
        for frame in set(frames[frames.index(anchor) + 1 :]):
            inclusive[frame] += int(count)
    return [
        f"{100 * n / busy:5.1f}%  {frame}"
        for frame, n in inclusive.most_common()
        if "asyncio/" not in frame and frame != RUNNER
    ][:limit]


# One server's run: its label ("floor" or "cache"), process and stub; the line to print.
ServerMeasure = Callable[[str, ServiceProcess, StubPeer], Awaitable[str]]


async def on_each_server(workdir: Path, workload: str, measure: ServerMeasure) -> None:
    """Run `measure` on the floor, then on a cache process; print what each returns."""
    floor = start_floor(workdir)
    try:
        peer = StubPeer(FLOOR, floor.grpc_address)
        print(f"floor  {workload:6s}", await measure("floor", floor, peer))
        await peer.aclose()
    finally:
        floor.stop()
    cache = start_service("cache", cache_env(workdir / "data"), workdir, label="cache")
    try:
        peer = StubPeer(MC_STUB, cache.grpc_address)
        print(f"cache  {workload:6s}", await measure("cache", cache, peer))
        await peer.aclose()
    finally:
        cache.stop()


async def run(workload: str, seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="marketcache-profile-"))
    spy_out = workdir / "cache.raw" if py_spy() else None

    async def one(label: str, proc: ServiceProcess, peer: StubPeer) -> str:
        return await measure(proc, peer, workload, seconds, spy_out if label == "cache" else None)

    try:
        await on_each_server(workdir, workload, one)
        if spy_out is None:
            print("(install py-spy for a profile of the cache process)")
        elif spy_out.exists():
            print("cache process, share of busy event-loop samples (inclusive):")
            print("\n".join(top_frames(spy_out)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def command(
    prog: str,
    doc: str | None,
    run_one: Callable[[str, float], Coroutine[Any, Any, None]],
    argv: list[str] | None,
) -> None:
    """The command line shared by `bench.profile` and `bench.attribute`: WORKLOAD [--seconds]."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(run_one(args.workload, args.seconds))


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m bench.profile`."""
    command("python -m bench.profile", __doc__, run, argv)


if __name__ == "__main__":
    main()
