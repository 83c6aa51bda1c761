"""Limits answer RESOURCE_EXHAUSTED (429 over REST) or 413, never an OOM kill or a growing queue.

- GRPC_MAX_MESSAGE_BYTES: a request or a reply above it is refused.
- GRPC_MAX_CONCURRENT_RPCS: with writes held by a database lock, calls past the
  limit are refused at once (gRPC and through the gateway as 429).
- CACHE_MAX_PREFIX_QUEUE: with reads held by a PostgreSQL table lock, operations
  past the queue depth of one prefix are refused at once.
- GATEWAY_MAX_BODY_BYTES: bodies above it are 413, announced or chunked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import to_value
from tests.gateway.stack import request
from tests.reliability.raw_http import build, chunked, send
from tests.reliability.records import record
from tests.support.polling import eventually_blocking
from tests.support.processes import ServiceProcess, running, running_http

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.e2e]

C = grpc.StatusCode
TOKEN = "limits-token"
TIMEOUT = 60.0


def _cache_env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": db_url,
        "ADMIN_TOKEN": TOKEN,
        **extra,
    }


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return C.OK


def _started(proc: ServiceProcess, method: str) -> float:
    """grpc_server_started_total of one CacheService method, from the process's /metrics."""
    url = f"http://127.0.0.1:{proc.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("grpc_server_started_total{") and f'grpc_method="{method}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_started(proc: ServiceProcess, method: str, count: float, within: float = 30) -> None:
    eventually_blocking(
        lambda: _started(proc, method) >= count, within, f"{count} {method} calls started"
    )


def test_messages_above_grpc_max_message_bytes_are_refused(tmp_path: Path) -> None:
    env = _cache_env(f"sqlite:///{tmp_path / 'cache.db'}", GRPC_MAX_MESSAGE_BYTES="65536")
    with running("cache", env, tmp_path) as cache, grpc.insecure_channel(cache.grpc_address) as ch:
        stub = cache_pb2_grpc.CacheServiceStub(ch)
        big = to_value("x" * 100_000)
        request_code = _code(lambda: stub.Set(cache_pb2.SetRequest(key="big:one", value=big)))
        # Each write fits; reading them all at once would not.
        for i in range(6):
            stub.Set(cache_pb2.SetRequest(key=f"big:{i}", value=to_value("y" * 30_000)))
        keys = [f"big:{i}" for i in range(6)]
        reply_code = _code(lambda: stub.MGet(cache_pb2.MGetRequest(keys=keys), timeout=TIMEOUT))
        still = stub.Get(cache_pb2.GetRequest(key="big:0"), timeout=TIMEOUT)
        alive = cache.popen.poll() is None
    codes = {"request above the limit": request_code.name, "reply above the limit": reply_code.name}
    record(
        "limit: GRPC_MAX_MESSAGE_BYTES (cache)",
        tried="a 100 kB Set and a 180 kB MGet reply against a 64 KiB message limit",
        cases="2 oversized messages, then a normal read",
        lost="nothing" if codes == dict.fromkeys(codes, "RESOURCE_EXHAUSTED") else str(codes),
        figures=codes,
    )
    assert request_code is C.RESOURCE_EXHAUSTED
    assert reply_code is C.RESOURCE_EXHAUSTED
    assert still.found and alive


@contextlib.contextmanager
def sqlite_write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock, so the cache's commits wait (busy_timeout) until released."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_calls_past_grpc_max_concurrent_rpcs_are_refused_at_once(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    env = _cache_env(f"sqlite:///{db}", GRPC_MAX_CONCURRENT_RPCS="4")
    with running("cache", env, tmp_path / "cache") as cache:
        gateway_env = {
            "GATEWAY_LISTEN": "127.0.0.1:0",
            "CACHE_ADDR": cache.grpc_address,
            "MARKET_DATA_ADDR": cache.grpc_address,
            "SECTOR_ADDR": cache.grpc_address,
            "ADMIN_TOKEN": TOKEN,
            "GATEWAY_MAX_BODY_BYTES": "65536",
        }
        with (
            running_http("gateway", gateway_env, tmp_path / "gateway") as gateway,
            grpc.insecure_channel(cache.grpc_address) as channel,
            concurrent.futures.ThreadPoolExecutor(8) as pool,
        ):
            stub = cache_pb2_grpc.CacheServiceStub(channel)

            def write(i: int) -> grpc.StatusCode:
                value = to_value({"i": i})
                req = cache_pb2.SetRequest(key=f"held:{i}", value=value)
                return _code(lambda: stub.Set(req, timeout=TIMEOUT))

            with sqlite_write_lock(db):
                held = [pool.submit(write, i) for i in range(4)]
                _wait_started(cache, "Set", 4)
                refused = Counter(write(100 + i).name for i in range(10))
                rest = request(
                    gateway.http_url,
                    "PUT",
                    "/api/v1/cache/keys/held:rest",
                    {"value": 1},
                    token=TOKEN,
                )
                assert not any(f.done() for f in held), "the held writes must still be waiting"
            done = Counter(f.result(timeout=TIMEOUT).name for f in held)
            after = write(200)
            bodies = _oversized_bodies(gateway)
    record(
        "limit: GRPC_MAX_CONCURRENT_RPCS (cache, via gRPC and the gateway)",
        tried=(
            "4 Sets held by a SQLite write lock against GRPC_MAX_CONCURRENT_RPCS=4, then 10 more "
            "Sets and a REST PUT through the gateway"
        ),
        cases="4 held, 10 refused over gRPC, 1 over REST; then the held ones complete",
        lost="nothing" if done == Counter({"OK": 4}) else f"held writes ended {dict(done)}",
        figures={
            "calls past the limit": dict(refused),
            "REST PUT past the limit": rest.status,
            "held writes after the lock": dict(done),
        },
    )
    record(
        "limit: GATEWAY_MAX_BODY_BYTES",
        tried="bodies over a 64 KiB limit: announced (Content-Length), chunked, a gzip bomb",
        cases=f"{sum(bodies.values())} requests",
        lost="nothing" if set(bodies) == {413} else str(dict(bodies)),
        figures={"answers": dict(bodies)},
    )
    assert refused == Counter({"RESOURCE_EXHAUSTED": 10}), refused
    assert rest.status == 429, rest.body
    assert done == Counter({"OK": 4}) and after is C.OK
    assert bodies == Counter({413: sum(bodies.values())}), bodies


def _oversized_bodies(gateway: ServiceProcess) -> Counter[int]:
    import gzip

    body = b'{"value": "' + b"z" * 200_000 + b'"}'
    json_type, auth = "Content-Type: application/json", f"Authorization: Bearer {TOKEN}"
    path = "/api/v1/cache/keys/big:body"
    requests = [build("PUT", path, body, [json_type, auth]) for _ in range(5)]
    requests += [
        build(
            "PUT",
            path,
            chunked(body),
            [json_type, auth, "Transfer-Encoding: chunked"],
            length=False,
        )
        for _ in range(5)
    ]
    bomb = gzip.compress(b'{"value": "' + b"a" * 20_000_000 + b'"}')
    requests += [build("PUT", path, bomb, [json_type, auth, "Content-Encoding: gzip"])] * 3
    return Counter(send(gateway.http_address, raw).status for raw in requests)


@pytest.mark.postgres
def test_operations_past_the_prefix_queue_depth_are_refused_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    # No memory layer: every read goes to the database, where a table lock holds it.
    env = _cache_env(pg_url, CACHE_MAX_PREFIX_QUEUE="3", CACHE_MAX_MEMORY_BYTES="0")
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with (
        running("cache", env, tmp_path) as cache,
        grpc.insecure_channel(cache.grpc_address) as channel,
        concurrent.futures.ThreadPoolExecutor(4) as pool,
    ):
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        stub.Set(cache_pb2.SetRequest(key="queue:a", value=to_value(1)), timeout=TIMEOUT)

        def read(key: str) -> grpc.StatusCode:
            return _code(lambda: stub.Get(cache_pb2.GetRequest(key=key), timeout=TIMEOUT))

        with psycopg.connect(dsn) as lock:
            lock.execute("LOCK TABLE cache_entries IN ACCESS EXCLUSIVE MODE")
            started = _started(cache, "Get")
            held = [pool.submit(read, "queue:a") for _ in range(3)]
            _wait_started(cache, "Get", started + 3)
            refused = Counter(read("queue:a").name for _ in range(10))
            with pytest.raises(grpc.RpcError) as caught:
                stub.Get(cache_pb2.GetRequest(key="queue:b"), timeout=TIMEOUT)
            lock.rollback()
        done = Counter(f.result(timeout=TIMEOUT).name for f in held)
        other = read("other:a")
    record(
        "limit: CACHE_MAX_PREFIX_QUEUE (cache, PostgreSQL)",
        tried=(
            "3 Gets of one prefix held by a PostgreSQL table lock against "
            "CACHE_MAX_PREFIX_QUEUE=3, then 10 more Gets of that prefix"
        ),
        cases="3 held, 10 refused; then the held ones complete",
        lost="nothing" if done == Counter({"OK": 3}) else f"held reads ended {dict(done)}",
        figures={"calls past the queue depth": dict(refused), "held reads": dict(done)},
    )
    assert refused == Counter({"RESOURCE_EXHAUSTED": 10}), refused
    assert "CACHE_MAX_PREFIX_QUEUE" in (caught.value.details() or ""), caught.value.details()
    assert done == Counter({"OK": 3}) and other is C.OK


def test_an_oversized_mget_reply_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """Up to CACHE_MAX_BATCH x CACHE_MAX_VALUE_BYTES (1000 x 1 MiB) would be built in memory."""
    env = _cache_env(f"sqlite:///{tmp_path / 'cache.db'}", CACHE_MAX_MEMORY_BYTES="0")
    with running("cache", env, tmp_path) as cache, grpc.insecure_channel(cache.grpc_address) as ch:
        stub = cache_pb2_grpc.CacheServiceStub(ch)
        value = to_value("v" * 1_000_000)
        keys = [f"huge:{i}" for i in range(6)]  # 6 MB of reply against the 4 MiB default
        for key in keys:
            stub.Set(cache_pb2.SetRequest(key=key, value=value), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as caught:
            stub.MGet(cache_pb2.MGetRequest(keys=keys), timeout=TIMEOUT)
    assert caught.value.code() is C.RESOURCE_EXHAUSTED
    # Refused by the cache, naming its limit, not by gRPC after the reply was built.
    assert "Sent message larger than max" not in (caught.value.details() or "")
    assert "GRPC_MAX_MESSAGE_BYTES" in (caught.value.details() or "")
