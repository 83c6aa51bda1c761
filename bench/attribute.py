"""`python -m bench.attribute WORKLOAD`: where the server's CPU per call goes, against the floor.

Runs one workload (bench.profile's) on the floor and on a cache process. For each
it reads the process's CPU time (psutil) over the timed interval and samples every
thread with py-spy (`--native --threads`, idle samples dropped), then splits the
CPU per operation over the rows of bench/FINDINGS.md by the frames of each
sample. With `perf` (Debian's linux-perf) it also traces the fsync family of
system calls of the cache (`perf trace -s`): the wall time a commit waits for the
disk, per operation. Run it on a quiet machine if you can; on a shared one, the
ratios between the rows and between the two servers hold better than the
absolute figures.
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
import tempfile
from pathlib import Path

import psutil

from bench.peers import StubPeer
from bench.profile import Counted, command, on_each_server, py_spy
from harness.process import ServiceProcess

ROWS = (
    "grpc core (and protobuf coding)",
    "asyncio scheduling",
    "our wrappers",
    "the servicer and store",
    "writer thread (SQLAlchemy, SQLite)",
    "cross-thread wake-ups",
    "other",
)
GRPC, ASYNCIO, WRAPPERS, SERVICER, WRITER, WAKE, OTHER = ROWS

# -- Python frames (py-spy, the event loop's thread): innermost telling frame wins.
_PY_RULES = (
    (
        WAKE,
        re.compile(
            r"call_soon_threadsafe|_write_to_self|_read_from_self|_chain_future|_call_set_state"
            r"|_copy_future_state|run_in_executor|ThreadPoolExecutor\.submit|wrap_future"
        ),
    ),
    (
        WRAPPERS,
        re.compile(
            r"services/common/(grpc_metrics|request_decoding|unary_calls|errors)\.py"
            r"|prometheus_client/"
        ),
    ),
    (SERVICER, re.compile(r"\((services|bench)/")),
    (GRPC, re.compile(r"\(grpc/|google/protobuf/")),
    (ASYNCIO, re.compile(r"\(asyncio/|uvloop|selectors\.py")),
)
# -- Native frames (perf): a wake-up whatever the thread; then by library.
_WAKE_NATIVE = re.compile(
    r"take_gil|drop_gil|futex|pthread_cond|sem_post|sem_wait|eventfd|__send\b|__recv\b"
    r"|sendto|recvfrom"
)
_GRPC_NATIVE = re.compile(r"cygrpc|libgrpc|_message|_upb|protobuf")
_LOOP_NATIVE = re.compile(r"uvloop|loop\.cpython|libuv")
_NET = re.compile(r"sendmsg|recvmsg|epoll|writev|readv|__libc_write|__libc_read|poll")


def python_shares(raw: Path, thread_id: int) -> dict[str, float]:
    """Share of each row in the Python samples of one thread (py-spy raw, --threads)."""
    rows: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        if _tid(thread) != thread_id:
            continue
        row = OTHER
        for frame in reversed(frames):  # innermost first
            row = next((r for r, pattern in _PY_RULES if pattern.search(frame)), OTHER)
            if row != OTHER:
                break
        rows[row] += int(count)
    total = sum(rows.values()) or 1
    return {row: n / total for row, n in rows.items()}


def thread_names(raw: Path) -> dict[int, str]:
    """OS thread id -> Python thread name, from a py-spy raw file recorded with --threads."""
    names: dict[int, str] = {}
    for line in raw.read_text().splitlines():
        head = line.split(";", 1)[0]
        tid = _tid(head)
        if tid is not None:
            names[tid] = head.partition(": ")[2]
    return names


def _tid(head: str) -> int | None:
    match = re.match(r"thread \((\d+)\)", head)
    return int(match.group(1)) if match else None


def native_samples(script: str) -> list[tuple[int, list[str]]]:
    """(thread id, frames leaf first as 'symbol (library)') per sample of `perf script`."""
    samples: list[tuple[int, list[str]]] = []
    for block in script.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines()]
        if not lines or not lines[0].isdigit():
            continue
        frames = [line.split(" ", 1)[1] if " " in line else line for line in lines[1:]]
        samples.append((int(lines[0]), frames))
    return samples


def attribute(
    samples: list[tuple[int, list[str]]], names: dict[int, str], main: int, shares: dict[str, float]
) -> dict[str, float]:
    """Samples per row: native frames first, the loop's interpreter time by its Python shares."""
    rows: collections.Counter[str] = collections.Counter()
    interpreter = 0
    for tid, frames in samples:
        text = ";".join(frames)
        name = names.get(tid, "")
        user = [f for f in frames if "[kernel" not in f]
        leaf = user[0] if user else ""
        if _WAKE_NATIVE.search(text):
            rows[WAKE] += 1
        elif "cache-writer" in name:
            rows[WRITER] += 1
        elif tid != main:
            # The poll thread and grpc's own threads (not Python threads).
            rows[GRPC if ("_poll_wrapper" in name or not name) else OTHER] += 1
        elif _GRPC_NATIVE.search(leaf) or _NET.search(leaf):
            rows[GRPC] += 1
        elif _LOOP_NATIVE.search(leaf):
            rows[ASYNCIO] += 1
        else:
            interpreter += 1
    result = {row: float(n) for row, n in rows.items()}
    for row, share in shares.items():
        result[row] = result.get(row, 0.0) + interpreter * share
    return result


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _fsync_ms(summary: str) -> tuple[float, int]:
    """Total milliseconds and calls of fsync/fdatasync in a `perf trace -s` summary."""
    total, calls = 0.0, 0
    for line in summary.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] in {"fsync", "fdatasync"}:
            calls += int(parts[1])
            total += float(parts[3])
    return total, calls


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def measure(proc: ServiceProcess, peer: StubPeer, workload: str, seconds: float) -> str:
    """Run the workload under py-spy and perf; the lines to print."""
    counted = await Counted.prepare(peer, workload)
    tmp = Path(tempfile.mkdtemp(prefix="marketcache-attribute-"))
    raw, data = tmp / "spy.raw", tmp / "perf.data"
    pid = str(proc.pid)
    watchers = []
    spy, perf = py_spy(), shutil.which("perf")
    if spy is not None:
        watchers.append(
            await _spawn(
                spy,
                "record",
                "--pid",
                pid,
                "--duration",
                str(int(seconds)),
                "--format",
                "raw",
                "--rate",
                "500",
                "--nonblocking",
                "--threads",
                "-o",
                str(raw),
            )
        )
    if perf is not None:
        watchers.append(
            await _spawn(
                perf,
                "record",
                "-g",
                "-e",
                "cpu-clock",
                "-F",
                "999",
                "-p",
                pid,
                "-o",
                str(data),
                "--",
                "sleep",
                str(seconds),
            )
        )
        trace = await _spawn(
            perf, "trace", "-s", "-p", pid, "-e", "fsync,fdatasync", "--", "sleep", str(seconds)
        )
    before = _cpu(proc.pid)
    rate = await counted.run(seconds)
    used = _cpu(proc.pid) - before
    ops = max(counted.count, 1)
    per_op = 1e6 * used / ops
    lines = [f"{rate:9.0f} ops/s   server CPU {per_op:7.0f} µs/op"]
    for watcher in watchers:
        await watcher.communicate()
    try:
        if raw.exists() and data.exists() and perf is not None:
            names = thread_names(raw)
            shares = python_shares(raw, proc.pid)
            script = await _spawn(perf, "script", "-i", str(data), "-F", "tid,ip,sym,dso")
            out, _ = await script.communicate()
            rows = attribute(native_samples(out.decode(errors="replace")), names, proc.pid, shares)
            total = sum(rows.values()) or 1.0
            for row in ROWS:
                lines.append(f"  {row:38s} {per_op * rows.get(row, 0.0) / total:7.1f} µs/op")
        else:
            lines.append("  (py-spy and perf are both needed for the rows)")
        if perf is not None:
            out, _ = await trace.communicate()
            ms, calls = _fsync_ms(out.decode(errors="replace"))
            lines.append(
                f"  {'fsync waits (wall, per op)':38s} {1e3 * ms / ops:7.1f} µs/op"
                f"   ({calls} calls, {ms / max(calls, 1):.2f} ms each, in {seconds:g} s)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(lines)


async def run(workload: str, seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="marketcache-attribute-"))

    async def one(_label: str, proc: ServiceProcess, peer: StubPeer) -> str:
        return await measure(proc, peer, workload, seconds)

    try:
        await on_each_server(workdir, workload, one)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m bench.attribute`."""
    command("python -m bench.attribute", __doc__, run, argv)


if __name__ == "__main__":
    main()
