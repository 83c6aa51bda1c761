"""`python -m services.cache` as a process: restart, kill -9, SIGTERM under load, bad config."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest

from marketcache.v1 import cache_pb2
from services.common.json_value import from_value, to_value
from tests.cache.harness import cache_env, cache_stub
from tests.support.processes import ServiceProcess, running, start_service

pytestmark = pytest.mark.e2e


async def write_all(address: str, keys: list[str]) -> None:
    async with cache_stub(address) as stub:
        await asyncio.gather(
            *(stub.Set(cache_pb2.SetRequest(key=k, value=to_value({"k": k}))) for k in keys)
        )


async def read_all(address: str, keys: list[str]) -> list[object]:
    async with cache_stub(address) as stub:
        reply = await stub.MGet(cache_pb2.MGetRequest(keys=keys))
    return [from_value(r.value) if r.found else None for r in reply.results]


async def test_a_clean_restart_brings_everything_back(tmp_path: Path) -> None:
    env = cache_env(tmp_path)
    keys = [f"stock:{i}" for i in range(100)] + ["news:AAPL:2025-01-15"]
    proc = start_service("cache", env, tmp_path)
    try:
        await write_all(proc.grpc_address, keys)
        assert await asyncio.to_thread(proc.terminate) == 0
    finally:
        proc.stop()
    assert "cache stopping" in proc.log()
    with running("cache", env, tmp_path, label="cache-2") as again:
        assert await read_all(again.grpc_address, keys) == [{"k": k} for k in keys]


@pytest.mark.chaos
async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    env = cache_env(tmp_path)
    keys = [f"stock:k{i}" for i in range(300)]
    proc = start_service("cache", env, tmp_path)
    try:
        await write_all(proc.grpc_address, keys)  # every one acknowledged
        proc.kill9()
    finally:
        proc.stop()
    with running("cache", env, tmp_path, label="cache-2") as again:
        assert await read_all(again.grpc_address, keys) == [{"k": k} for k in keys]


async def test_sigterm_during_concurrent_writes_keeps_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    env = cache_env(tmp_path)
    proc = start_service("cache", env, tmp_path)
    acknowledged: list[str] = []
    enough = asyncio.Event()
    try:
        async with cache_stub(proc.grpc_address) as stub:

            async def writer(w: int) -> None:
                for n in range(100_000):
                    key = f"stock:w{w}:{n}"
                    try:
                        await stub.Set(cache_pb2.SetRequest(key=key, value=to_value(n)), timeout=10)
                    except grpc.aio.AioRpcError:
                        return  # the server is going away: stop writing
                    acknowledged.append(key)
                    if len(acknowledged) >= 300:
                        enough.set()

            writers = [asyncio.create_task(writer(w)) for w in range(16)]
            await asyncio.wait_for(enough.wait(), 60)
            proc.popen.send_signal(signal.SIGTERM)  # while the writers keep going
            await asyncio.wait_for(asyncio.gather(*writers), 60)
        code = await asyncio.to_thread(proc.popen.wait, 30)
    finally:
        proc.stop()
    assert code == 0, proc.log()
    with running("cache", env, tmp_path, label="cache-2") as again:
        for at in range(0, len(acknowledged), 1000):
            chunk = acknowledged[at : at + 1000]
            values = await read_all(again.grpc_address, chunk)
            assert [v is not None for v in values] == [True] * len(chunk)


def _exits_with_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    proc: ServiceProcess = start_service("cache", env, tmp_path, wait=False)
    try:
        code = proc.popen.wait(timeout=30)
    finally:
        proc.stop()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert code == 2, proc.log()
    assert len(lines) == 1, lines
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("variable", "bad", "expected"),
    [
        ("CACHE_MAX_BATCH", "lots", "CACHE_MAX_BATCH: expected an integer, got 'lots'"),
        ("CACHE_MAX_MEMORY_BYTES", "12 parsecs", "CACHE_MAX_MEMORY_BYTES: expected a size"),
        ("CACHE_DB_MAX_BYTES", "-5", "CACHE_DB_MAX_BYTES: expected a size"),
        ("CACHE_DB_URL", "mysql://x/y", "CACHE_DB_URL: unsupported database 'mysql'"),
        ("CACHE_DEFAULT_TTL", "999999999", "CACHE_DEFAULT_TTL: 999999999 is above CACHE_MAX_TTL"),
        ("CACHE_LISTEN", "nowhere", "CACHE_LISTEN: expected host:port"),
        ("CACHE_ENABLED", "perhaps", "CACHE_ENABLED: expected true or false"),
    ],
)
def test_bad_configuration_stops_the_start_naming_the_variable(
    tmp_path: Path, variable: str, bad: str, expected: str
) -> None:
    _exits_with_one_line(tmp_path, cache_env(tmp_path, **{variable: bad}), expected)


def test_an_unusable_database_fails_the_start_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    env = cache_env(tmp_path, CACHE_DB_URL=f"sqlite:///{tmp_path}/a-file/cache.db")
    proc = start_service("cache", env, tmp_path, wait=False)
    try:
        code = proc.popen.wait(timeout=30)
    finally:
        proc.stop()
    assert code == 1, proc.log()
    assert "cache failed to start: FileExistsError" in proc.log()
    assert "a-file" in proc.log()
