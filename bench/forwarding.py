"""A forwarded Get against a direct one: two cache processes sharing one SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from bench import drivers
from bench.peers import VALUE_TEXT
from bench.results import DIRECT_P50, FORWARD_P50, Cell, Results
from bench.servers import BenchError, cache_env
from bench.sizes import Sizes
from bench.stats import percentile
from harness.process import ServiceProcess
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.channels import open_channel

NOT_AVAILABLE = "multi-process ownership not available"
# How long the two nodes get to see each other and spread the prefixes.
SETTLE_SECONDS = 30.0
# The lease a node reports when it owns every prefix alone (services.cache.ownership.owners).
SINGLE_NODE = "*"
CANDIDATE_PREFIXES = tuple(f"fwd{i}" for i in range(64))


async def _owner_of(stub: cache_pb2_grpc.CacheServiceAsyncStub, prefix: str) -> str:
    reply = await stub.GetOwnership(cache_pb2.GetOwnershipRequest(prefix=prefix), timeout=5.0)
    return str(reply.owner.node_id)


async def _split_prefix(
    stubs: dict[str, cache_pb2_grpc.CacheServiceAsyncStub],
) -> tuple[str, str, str] | None:
    """(prefix, owner node, non-owner node) once both nodes agree one node owns a prefix."""
    nodes = list(stubs)
    deadline = time.monotonic() + SETTLE_SECONDS
    while not await _both_members(stubs):
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.1)
    while time.monotonic() < deadline:
        for prefix in CANDIDATE_PREFIXES:
            try:
                views = {node: await _owner_of(stub, prefix) for node, stub in stubs.items()}
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                    return None
                continue
            owners = set(views.values())
            if len(owners) == 1 and (owner := owners.pop()) in nodes:
                other = next(n for n in nodes if n != owner)
                return prefix, owner, other
        await asyncio.sleep(0.1)
    return None


async def _both_members(stubs: dict[str, cache_pb2_grpc.CacheServiceAsyncStub]) -> bool:
    """Whether every node lists every node as a live member (False in single-node mode)."""
    for stub in stubs.values():
        reply = await stub.ListOwners(cache_pb2.ListOwnersRequest(), timeout=5.0)
        if any(owner.prefix == SINGLE_NODE for owner in reply.owners):
            raise _SingleNode
        alive = {m.node_id for m in reply.members if m.alive}
        if not set(stubs) <= alive:
            return False
    return True


class _SingleNode(Exception):  # noqa: N818 (a signal inside this module, not an error)
    """A node reports owning every prefix: no leases, so no forwarding."""


def _get_op(stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str, via: str) -> drivers.AsyncOp:
    request = cache_pb2.GetRequest(key=key)

    async def op(_i: int) -> None:
        if not (await stub.Get(request)).found:
            raise BenchError(f"Get of {key} via {via} missed")

    return op


async def measure(results: Results, sizes: Sizes, workdir: Path) -> None:
    """Fill the direct and forwarded Get rows, or mark them not measured."""
    data = workdir / "cache-shared"
    procs: list[ServiceProcess] = []
    channels: list[grpc.aio.Channel] = []
    try:
        for node in ("bench-a", "bench-b"):
            env = cache_env(data, CACHE_NODE_ID=node, CACHE_LEASE_SECONDS="5")
            procs.append(start_service("cache", env, workdir, label=f"cache-{node}"))
        stubs: dict[str, cache_pb2_grpc.CacheServiceAsyncStub] = {}
        for node, proc in zip(("bench-a", "bench-b"), procs, strict=True):
            channel = open_channel(proc.grpc_address)
            channels.append(channel)
            stubs[node] = cache_pb2_grpc.CacheServiceStub(channel)
        try:
            split = await _split_prefix(stubs)
        except _SingleNode:
            split = None
        if split is None:
            for row in (DIRECT_P50, FORWARD_P50):
                results.put_system(row, Cell.not_measured(NOT_AVAILABLE))
            return
        prefix, owner, other = split
        key = f"{prefix}:k"
        value = struct_pb2.Value(string_value=VALUE_TEXT)
        await stubs[owner].Set(cache_pb2.SetRequest(key=key, value=value, ttl_seconds=3600))
        ops = {
            "direct": _get_op(stubs[owner], key, owner),
            "forwarded": _get_op(stubs[other], key, other),
        }
        reps: dict[str, list[float]] = {"direct": [], "forwarded": []}
        for op in ops.values():
            await drivers.latencies(op, sizes.warmup_seconds)
        for _ in range(sizes.reps):
            for name, op in ops.items():
                reps[name].append(percentile(await drivers.latencies(op, sizes.seconds), 50))
        results.put_system(DIRECT_P50, Cell.of(reps["direct"], f"via {owner}, the owner"))
        results.put_system(FORWARD_P50, Cell.of(reps["forwarded"], f"via {other}, forwarded"))
    finally:
        for channel in channels:
            await channel.close(None)
        for proc in procs:
            proc.stop()
