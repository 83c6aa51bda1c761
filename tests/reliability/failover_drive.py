"""64-way Set/MSet/Get through three caches while their PostgreSQL fails over, recorded as
a per-key register history (harness/nemesis/linearizability.py judges it)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from harness.nemesis.linearizability import READ, WRITE, Op, Verdict, check_register
from marketcache.v1 import cache_pb2
from services.client import CacheClient, CacheError, CacheUnavailable
from tests.ownership.cluster import Cluster

WORKERS = 64
PREFIXES = [f"fo{i}" for i in range(16)]
KEYS = [f"{p}:k{j}" for p in PREFIXES for j in range(8)]
CALL_TIMEOUT = 2.0


@dataclass
class FailoverHistory:
    """What the clients saw, per key; epochs each node reported, per prefix."""

    ops: dict[str, list[Op]] = field(default_factory=lambda: {k: [] for k in KEYS})
    outcomes: Counter[str] = field(default_factory=Counter)
    # (invoke, complete) of acknowledged writes, to find the first issued after the kill.
    acked_at: list[tuple[float, float]] = field(default_factory=list)
    # (node, prefix) -> epochs in the order that node reported them.
    epochs: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def write(self, keys: list[str], value: str, invoke: float, complete: float | None) -> None:
        for key in keys:
            self.ops[key].append(Op(WRITE, f"{value}@{key}", invoke, complete))
        self.outcomes["write ok" if complete is not None else "write unknown"] += 1
        if complete is not None:
            self.acked_at.append((invoke, complete))

    def read(self, key: str, value: object, invoke: float, complete: float) -> None:
        self.ops[key].append(Op(READ, value, invoke, complete))
        self.outcomes["read ok"] += 1

    @property
    def acknowledged(self) -> int:
        return sum(1 for ops in self.ops.values() for op in ops if op.kind == WRITE and op.complete)

    def first_ack_after(self, moment: float) -> float | None:
        """When the first write issued after `moment` was acknowledged, or None."""
        later = [done for invoke, done in self.acked_at if invoke > moment]
        return min(later) if later else None

    def verdicts(self) -> dict[str, Verdict]:
        return {key: check_register(ops) for key, ops in self.ops.items()}

    def lost(self, final: dict[str, object]) -> list[str]:
        """Keys whose final value predates an acknowledged write (an acknowledged write lost)."""
        lost = []
        for key, ops in self.ops.items():
            acked = [op for op in ops if op.kind == WRITE and op.complete is not None]
            if not acked:
                continue
            latest_invoke = max(op.invoke for op in acked)
            allowed = {op.value for op in acked if (op.complete or 0) >= latest_invoke}
            allowed |= {op.value for op in ops if op.kind == WRITE and op.complete is None}
            if final.get(key) not in allowed:
                lost.append(key)
        return lost


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def worker(
    index: int, client: CacheClient, history: FailoverHistory, stop: asyncio.Event
) -> None:
    """Set (60%), MSet of 3 keys of one prefix (20%), Get (20%) until `stop`."""
    rng = random.Random(index)
    n = 0
    while not stop.is_set():
        n += 1
        roll = rng.random()
        invoke = time.monotonic()
        value = f"w{index}-{n}"
        if roll < 0.2:
            key = rng.choice(KEYS)
            try:
                got = await client.get(key)
            except CacheError:
                history.outcomes["read failed"] += 1
                await _pause(stop, 0.05)
                continue
            history.read(key, got, invoke, time.monotonic())
            continue
        if roll < 0.4:
            prefix = rng.choice(PREFIXES)
            keys = rng.sample([k for k in KEYS if k.startswith(prefix + ":")], 3)
        else:
            keys = [rng.choice(KEYS)]
        try:
            if len(keys) > 1:
                await client.mset([(k, f"{value}@{k}", 3600) for k in keys])
            else:
                await client.set(keys[0], f"{value}@{keys[0]}", ttl=3600)
        except CacheError:
            history.write(keys, value, invoke, None)
            await _pause(stop, 0.05)
            continue
        history.write(keys, value, invoke, time.monotonic())


async def watch_epochs(cluster: Cluster, history: FailoverHistory, stop: asyncio.Event) -> None:
    """Every node's ListOwners, over and over: the epochs it reports per prefix."""
    while not stop.is_set():
        for node in cluster.nodes:
            try:
                reply = await cluster.stub(node).ListOwners(
                    cache_pb2.ListOwnersRequest(), timeout=CALL_TIMEOUT
                )
            except Exception:  # a node in the gap answers nothing; ask again next round
                continue
            for owner in reply.owners:
                if owner.epoch > 0:
                    seen = history.epochs.setdefault((node, owner.prefix), [])
                    if not seen or seen[-1] != owner.epoch:
                        seen.append(owner.epoch)
        await _pause(stop, 0.2)


def backwards(history: FailoverHistory) -> list[str]:
    """(node, prefix) pairs whose reported epoch ever went down."""
    return [
        f"{node}/{prefix}: {seen}"
        for (node, prefix), seen in history.epochs.items()
        if any(b < a for a, b in itertools.pairwise(seen))
    ]


async def final_reads(cluster: Cluster, history: FailoverHistory) -> dict[str, dict[str, object]]:
    """Every key read through every node once the writers stopped (recorded as reads too)."""
    seen: dict[str, dict[str, object]] = {}
    for node, proc in cluster.nodes.items():
        client = CacheClient(proc.grpc_address, timeout=10)
        try:
            # A node may still be finding the writable host (its pool met the standby
            # while it was read-only): UNAVAILABLE is a refusal, asked again until a
            # deadline; only the read that answered enters the history.
            deadline = time.monotonic() + 60
            while True:
                invoke = time.monotonic()
                try:
                    values = await client.mget(KEYS)
                    break
                except CacheUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            done = time.monotonic()
        finally:
            await client.close()
        seen[node] = dict(zip(KEYS, values, strict=True))
        for key, value in seen[node].items():
            history.read(key, value, invoke, done)
    return seen
