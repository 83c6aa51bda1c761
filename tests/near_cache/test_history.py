"""Bounded staleness under faults, judged by the checker over a recorded history.

A writer process and a reader process (near cache on, bound 1000 ms) run
against one cache process or three, while the owner is killed, paused longer
than the bound, or restarted on its file; the writer also clears the prefix and
writes short TTLs all along. Nothing here asserts on timing: the history is
judged after the run by tests.near_cache.staleness.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from harness.nemesis.staleness import load, violations
from harness.process import ServiceProcess, spawn
from marketcache.v1 import cache_pb2
from services.client import CacheClient
from tests.cache.harness import ADMIN_TOKEN, cache_env
from tests.ownership.cluster import Cluster
from tests.support.polling import eventually
from tests.support.processes import stack_of, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

BOUND_S = 1.0
CLIENT_ENV = {
    "CACHE_NEAR_CACHE_BYTES": "1048576",
    "CACHE_NEAR_MAX_STALENESS_MS": str(int(BOUND_S * 1000)),
    "ADMIN_TOKEN": ADMIN_TOKEN,
}


async def run_history(
    tmp_path: Path,
    address: str,
    fault: Callable[[], Awaitable[None]],
    reader_env: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Writer and reader processes around `fault` (the reader's environment plus
    `reader_env`); (reads, near-cache hits). Fails on any violation of the bound."""
    stop = tmp_path / "stop"
    stop.unlink(missing_ok=True)
    procs: list[ServiceProcess] = []
    outs = {role: tmp_path / f"{role}.jsonl" for role in ("writer", "reader")}
    try:
        for role, out in outs.items():
            module = ["tests.near_cache.workload", role, address, str(out), str(stop)]
            env = {**CLIENT_ENV, **(reader_env or {})} if role == "reader" else CLIENT_ENV
            procs.append(spawn(module, env, tmp_path, f"client-{role}"))

        async def near_hits() -> bool:
            text = outs["reader"].read_text() if outs["reader"].exists() else ""
            return text.count('"op": "read"') > 200

        await eventually(near_hits, within=60, what="the reader under way")
        await asyncio.sleep(2)  # let the near cache warm (not a correctness wait)
        await fault()
        await asyncio.sleep(3)  # reads and writes go on after the fault
    finally:
        stop.touch()
        for proc in procs:
            try:
                await asyncio.to_thread(proc.popen.wait, 60)
            except subprocess.TimeoutExpired:
                stack = await asyncio.to_thread(stack_of, proc.pid)
                raise AssertionError(f"{proc.name} did not stop:\n{stack}") from None
            finally:
                proc.stop()
    writes, reads = load(outs.values())
    found = violations(writes, reads, BOUND_S)
    assert not found, f"{len(found)} violations, first: {found[:3]}"
    stats = [json.loads(line) for line in outs["reader"].read_text().splitlines()]
    hits = int(next(s["near_hits"] for s in stats if s["op"] == "stats"))
    assert any(w.acked is not None for w in writes)
    return len(reads), hits


def free_port_env(tmp_path: Path) -> dict[str, str]:
    return cache_env(tmp_path, CACHE_LEASE_SECONDS="2")


async def restarted_on_its_port(proc: ServiceProcess, tmp_path: Path, how: str) -> ServiceProcess:
    port = proc.grpc_address.rpartition(":")[2]
    if how == "kill9":
        proc.kill9()
    else:
        assert await asyncio.to_thread(proc.terminate) == 0
    env = {**proc.env, "CACHE_LISTEN": f"127.0.0.1:{port}"}
    env = {k: v for k, v in env.items() if k.startswith(("CACHE_", "ADMIN_", "GRPC_"))}
    return await asyncio.to_thread(start_service, "cache", env, tmp_path, label="cache-again")


@pytest.mark.parametrize("fault", ["kill9_then_restart", "sigterm_restart", "sigstop"])
async def test_one_cache_process_no_violation(tmp_path: Path, fault: str) -> None:
    proc = await asyncio.to_thread(start_service, "cache", free_port_env(tmp_path), tmp_path)
    procs = [proc]

    async def act() -> None:
        if fault == "sigstop":
            proc.popen.send_signal(signal.SIGSTOP)
            await asyncio.sleep(BOUND_S * 2.5)
            proc.popen.send_signal(signal.SIGCONT)
        else:
            how = "kill9" if fault.startswith("kill9") else "term"
            procs.append(await restarted_on_its_port(proc, tmp_path, how))

    try:
        reads, hits = await run_history(tmp_path, proc.grpc_address, act)
    finally:
        for p in procs:
            p.stop()
    assert hits > 0, f"no read of {reads} came from the near cache"


async def test_three_cache_processes_kill_9_of_the_owner_then_takeover(tmp_path: Path) -> None:
    cluster = Cluster(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    try:
        await cluster.start("node-a", "node-b", "node-c")
        await cluster.wait_members(["node-a", "node-b", "node-c"])
        reply = await cluster.stub("node-a").GetOwnership(
            cache_pb2.GetOwnershipRequest(prefix="hist")
        )
        owner = reply.owner.node_id or "node-a"
        entry = next(n for n in cluster.nodes if n != owner)
        # Make sure the prefix has its owner before the clients start.
        client = CacheClient(cluster.nodes[entry].grpc_address, timeout=5)
        await client.set("hist:setup", "start")  # not a key the writer records
        await client.close()
        owner = (
            await cluster.stub(entry).GetOwnership(cache_pb2.GetOwnershipRequest(prefix="hist"))
        ).owner.node_id
        entry = next(n for n in cluster.nodes if n != owner)

        async def act() -> None:
            cluster.nodes[owner].kill9()

        reads, hits = await run_history(tmp_path, cluster.nodes[entry].grpc_address, act)
        assert hits > 0, f"no read of {reads} came from the near cache"
    finally:
        await cluster.close()


async def test_a_subscriber_that_stops_reading_never_blocks_commits(tmp_path: Path) -> None:
    proc = await asyncio.to_thread(start_service, "cache", cache_env(tmp_path), tmp_path)
    client = CacheClient(proc.grpc_address, timeout=10)
    try:
        async with _raw_watch(proc.grpc_address, "slow") as call:
            first = await call.read()
            assert first.WhichOneof("event") == "started"
            # Never read again. Big keys fill the queue and the socket quickly.
            for batch in range(30):
                await client.mset([(f"slow:{'x' * 200}{batch}-{i}", i, 60) for i in range(100)])
        # 3000 writes in 30 commits acknowledged while the stream sat unread.
        assert await client.get(f"slow:{'x' * 200}29-99") == 99
    finally:
        await client.close()
        proc.stop()


class _raw_watch:  # noqa: N801 (used as a context manager)
    def __init__(self, address: str, prefix: str) -> None:
        import grpc

        from marketcache.v1 import cache_pb2_grpc

        self._channel = grpc.aio.insecure_channel(address)
        self._stub = cache_pb2_grpc.CacheServiceStub(self._channel)
        self._prefix = prefix

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        self._call = self._stub.Watch(cache_pb2.WatchRequest(prefixes=[self._prefix]))
        return self._call

    async def __aexit__(self, *exc: object) -> None:
        self._call.cancel()
        await self._channel.close(None)
