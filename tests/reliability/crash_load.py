"""64-way concurrent Set/MSet/Delete against a cache process, killed with SIGKILL mid-load."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value
from tests.reliability.history import ABSENT, History
from tests.support.processes import ServiceProcess

WORKERS = 64
PREFIXES = tuple(f"crash{p}" for p in range(8))
# Keys every worker may write: the registers of the history.
SHARED_KEYS = tuple(f"{prefix}:k{i}" for prefix in PREFIXES for i in range(12))
# Codes an in-flight call may end with once its server was killed.
KILLED_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
RPC_TIMEOUT = 30.0
MGET_CHUNK = 500


@dataclass
class LoadOutcome:
    """What one round of load did before and after the kill."""

    acked_calls: int = 0
    in_flight_at_kill: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    # Errors before the kill, or codes a kill cannot explain: each one fails the test.
    unexpected: list[str] = field(default_factory=list)


class CrashLoad:
    """Drives WORKERS concurrent writers and kills the server after `kill_after` acks."""

    def __init__(
        self, stub: cache_pb2_grpc.CacheServiceAsyncStub, history: History, seed: int
    ) -> None:
        self.stub = stub
        self.history = history
        self.seed = seed
        self.killed = asyncio.Event()
        self.outcome = LoadOutcome()

    async def run(self, proc: ServiceProcess, kill_after: int) -> LoadOutcome:
        """Load until `kill_after` calls were acknowledged, SIGKILL, wait for every worker."""
        in_flight = 0

        async def worker(index: int) -> None:
            nonlocal in_flight
            rng = random.Random(self.seed * 1_000 + index)
            while not self.killed.is_set():
                in_flight += 1
                try:
                    await self._one(rng, index)
                except grpc.aio.AioRpcError as exc:
                    if not self.killed.is_set() or exc.code() not in KILLED_CODES:
                        self.outcome.unexpected.append(f"{exc.code().name}: {exc.details()}")
                    return
                finally:
                    in_flight -= 1
                self.outcome.acked_calls += 1
                if self.outcome.acked_calls >= kill_after and not self.killed.is_set():
                    # SIGKILL from inside the load: calls are in flight at this very moment.
                    proc.popen.send_signal(signal.SIGKILL)
                    self.outcome.in_flight_at_kill = in_flight
                    self.killed.set()

        await asyncio.gather(*(worker(i) for i in range(WORKERS)))
        await asyncio.to_thread(proc.popen.wait, 30)
        return self.outcome

    async def _one(self, rng: random.Random, worker: int) -> None:
        kind = rng.choices(("set", "delete", "mset", "batch"), weights=(45, 25, 15, 15))[0]
        self.outcome.calls[kind] += 1
        op_id = self.history.next_id()
        if kind == "set":
            key = rng.choice(SHARED_KEYS)
            value = {"op": op_id, "w": worker}
            ops = self.history.begin(op_id, "set", {key: value})
            await self.stub.Set(
                cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=3600),
                timeout=RPC_TIMEOUT,
            )
            self.history.ack(ops)
        elif kind == "delete":
            key = rng.choice(SHARED_KEYS)
            ops = self.history.begin(op_id, "delete", {key: ABSENT})
            await self.stub.Delete(cache_pb2.DeleteRequest(key=key), timeout=RPC_TIMEOUT)
            self.history.ack(ops)
        elif kind == "mset":
            # Several registers of one prefix in one call (other workers race on them).
            prefix = rng.choice(PREFIXES)
            keys = rng.sample([k for k in SHARED_KEYS if k.startswith(prefix + ":")], 4)
            states = {key: {"op": op_id, "i": i} for i, key in enumerate(keys)}
            ops = self.history.begin(op_id, "mset", states)
            await self.stub.MSet(_mset(states), timeout=RPC_TIMEOUT)
            self.history.ack(ops)
        else:
            # Fresh keys, written only by this call: all-or-nothing is checkable.
            prefix = rng.choice(PREFIXES)
            keys = [f"{prefix}:b{op_id}:{i}" for i in range(rng.randint(2, 8))]
            batch = self.history.begin_batch(op_id, keys)
            await self.stub.MSet(
                _mset({key: {"batch": op_id, "i": i} for i, key in enumerate(keys)}),
                timeout=RPC_TIMEOUT,
            )
            batch.acked = time.monotonic()


def _mset(states: Mapping[str, object]) -> cache_pb2.MSetRequest:
    return cache_pb2.MSetRequest(
        items=[
            cache_pb2.MSetItem(key=key, value=to_value(value), ttl_seconds=3600)
            for key, value in states.items()
        ]
    )


async def read_states(
    stub: cache_pb2_grpc.CacheServiceAsyncStub, keys: Sequence[str]
) -> dict[str, object]:
    """The current state of every key (ABSENT for a miss), in chunks of MGET_CHUNK."""
    states: dict[str, object] = {}
    for at in range(0, len(keys), MGET_CHUNK):
        chunk = list(keys[at : at + MGET_CHUNK])
        reply = await stub.MGet(cache_pb2.MGetRequest(keys=chunk), timeout=RPC_TIMEOUT)
        for key, result in zip(chunk, reply.results, strict=True):
            states[key] = from_value(result.value) if result.found else ABSENT
    return states
