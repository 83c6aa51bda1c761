"""Losing one shard: two caches on two databases (CACHE_DB_URLS), one of them a throwaway
PostgreSQL stopped with `pg_ctl -m immediate` under writes. Only that shard's prefixes
answer UNAVAILABLE; the other shard's keep acknowledging writes; Health names the lost
shard; after it comes back, every acknowledged write is read back through both caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.server import CacheServer
from services.common.channel_pool import ChannelPool
from services.common.json_value import from_value, to_value
from tests.cache.shard_support import prefixes_in, sharded_server
from tests.reliability.records import nothing_lost, record
from tests.support.pg_cluster import PgSet, pg_servers
from tests.support.polling import eventually
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.chaos]

NODES = ("shard-node-a", "shard-node-b")
PER_SHARD = 8
CALL_TIMEOUT = 5.0


@pytest.fixture
def servers() -> Iterator[PgSet]:
    with pg_servers() as made:
        yield made


@dataclass
class Key:
    """One key, written by one worker with increasing integers."""

    name: str
    shard: int
    acked: int = 0
    attempted: int = 0
    ack_times: list[float] = field(default_factory=list)


class Drive:
    """One writer per key, alternating the two caches; outcomes counted per shard."""

    def __init__(self, keys: list[Key], stubs: list[cache_pb2_grpc.CacheServiceAsyncStub]) -> None:
        self.keys = keys
        self.stubs = stubs
        self.outcomes: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self.tasks = [asyncio.create_task(self._write(k)) for k in keys]

    async def _write(self, key: Key) -> None:
        turn = 0
        while not self.stop.is_set():
            turn += 1
            value = key.attempted + 1
            key.attempted = value
            try:
                await self.stubs[turn % 2].Set(
                    cache_pb2.SetRequest(key=key.name, value=to_value(value), ttl_seconds=3600),
                    timeout=CALL_TIMEOUT,
                )
            except grpc.aio.AioRpcError as exc:
                self.outcomes[f"shard {key.shard} {exc.code().name}"] += 1
                await asyncio.sleep(0.05)  # a down shard is not hammered
                continue
            key.acked = value
            key.ack_times.append(time.monotonic())
            self.outcomes[f"shard {key.shard} OK"] += 1

    def acks(self, shard: int, since: float) -> int:
        """Writes to `shard` acknowledged after `since` (monotonic)."""
        return sum(1 for k in self.keys if k.shard == shard for t in k.ack_times if t > since)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _code_of_get(stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str) -> str:
    try:
        await stub.Get(cache_pb2.GetRequest(key=key), timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "OK"


async def read_back(stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str) -> cache_pb2.GetResponse:
    """Get `key`; UNAVAILABLE is asked again for a while: a node whose own heartbeat has
    not yet reached the returned shard refuses its prefixes ("retry") until it does.
    Availability is not what this read checks: nothing acknowledged is lost."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await stub.Get(cache_pb2.GetRequest(key=key), timeout=30)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def test_losing_one_shard_stops_only_its_prefixes_and_loses_nothing(
    servers: PgSet, tmp_path: Path
) -> None:
    lost_node = await asyncio.to_thread(servers.primary, "shard1")
    with fresh_database() as kept_url:
        urls = [
            kept_url,
            f"postgresql+psycopg://postgres@127.0.0.1:{lost_node.port}/postgres?connect_timeout=3",
        ]
        keys = [Key(f"{p}:k", s) for s in (0, 1) for p in prefixes_in(s, urls, PER_SHARD, "loss")]
        caches: list[CacheServer] = [
            sharded_server(
                tmp_path / n, urls, CollectorRegistry(), CACHE_NODE_ID=n, CACHE_LEASE_SECONDS="2"
            )
            for n in NODES
        ]
        pool: ChannelPool[cache_pb2_grpc.CacheServiceAsyncStub] = ChannelPool(
            cache_pb2_grpc.CacheServiceStub, None
        )
        drive: Drive | None = None
        try:
            for cache in caches:
                await cache.start()
            stubs = [pool.stub(c.address) for c in caches]
            drive = Drive(keys, stubs)
            await eventually(lambda: all(k.acked >= 5 for k in keys), 120, "no steady writes")

            await asyncio.to_thread(lost_node.stop, "immediate")
            killed = time.monotonic()
            lost_keys = [k.name for k in keys if k.shard == 1]
            kept_keys = [k.name for k in keys if k.shard == 0]

            async def lost_shard_unavailable() -> bool:
                codes = [await _code_of_get(s, k) for s in stubs for k in lost_keys[:2]]
                return all(c == "UNAVAILABLE" for c in codes)

            # Reads from memory end when the lease may have lapsed: then UNAVAILABLE.
            await eventually(lost_shard_unavailable, 60, "the lost shard's prefixes still answer")
            unavailable_after = time.monotonic() - killed
            await eventually(lambda: drive is not None and drive.acks(0, killed) >= 200, 120,
                             "the other shard stopped acknowledging writes")  # fmt: skip
            kept_codes = [await _code_of_get(s, k) for s in stubs for k in kept_keys]
            health = await stubs[0].Health(cache_pb2.HealthRequest(), timeout=CALL_TIMEOUT)
            during = drive.acks(0, killed)
            # Nothing can be acknowledged in a shard whose database is down.
            lost_shard_acks = drive.acks(1, killed + unavailable_after)

            await asyncio.to_thread(lost_node.start)
            back = time.monotonic()
            await eventually(lambda: drive is not None and drive.acks(1, back) >= 20, 120,
                             "the returned shard never acknowledged writes again")  # fmt: skip
            first_back = min(t for k in keys if k.shard == 1 for t in k.ack_times if t > back)
            await drive.close()

            lost: list[str] = []
            for stub in stubs:
                for k in keys:
                    reply = await read_back(stub, k.name)
                    value = from_value(reply.value) if reply.found else None
                    # Unknown outcomes may have landed; an acknowledged one must have.
                    if not (isinstance(value, int | float) and k.acked <= value <= k.attempted):
                        lost.append(f"{k.name}: read {value}, acked {k.acked}")

            async def healthy_again() -> bool:
                reply = await stubs[0].Health(cache_pb2.HealthRequest(), timeout=CALL_TIMEOUT)
                return reply.status == "healthy"

            await eventually(healthy_again, 60, "Health never came back to healthy")
            other = {
                o: n for o, n in drive.outcomes.items() if not o.endswith(("OK", "UNAVAILABLE"))
            }
            record(
                "Losing one of two shards (CACHE_DB_URLS, 2 caches)",
                tried=(
                    f"{len(keys)} writers (one per key, {PER_SHARD} prefixes per shard) through "
                    "two caches on two databases; the database of shard 1 stopped with pg_ctl -m "
                    "immediate mid-drive, then started again; every key read through both caches"
                ),
                cases=(
                    f"{sum(k.acked for k in keys)} acknowledged writes; "
                    f"{during} acknowledged in shard 0 while shard 1 was down"
                ),
                lost=nothing_lost(len(lost)),
                figures={
                    "kill to the lost shard's reads UNAVAILABLE (s)": round(unavailable_after, 2),
                    "restart to the first acknowledged write in the lost shard (s)": round(
                        first_back - back, 2
                    ),
                    "outcomes": dict(drive.outcomes),
                    "Health during the loss": f"{health.status}: {health.reason}",
                },
                passed=not lost and not other and set(kept_codes) == {"OK"},
            )
            print(dict(drive.outcomes), health.reason)
            assert not lost, lost
            assert set(kept_codes) == {"OK"}, kept_codes
            assert not other, f"answers other than OK or UNAVAILABLE: {other}"
            assert drive.outcomes["shard 1 UNAVAILABLE"] > 0
            assert lost_shard_acks == 0
            assert health.status == "degraded" and "shard 1" in health.reason, health
            assert "shard 0" not in health.reason
        finally:
            if drive is not None:
                await drive.close()
            for cache in caches:
                with contextlib.suppress(Exception):
                    await cache.stop()
            await pool.close()
