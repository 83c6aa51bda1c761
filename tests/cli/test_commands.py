"""The marketcache CLI through click's runner, against a real cache server on 127.0.0.1:0.

The commands run their own event loop, so each runs in a thread beside the
test's loop, which serves the in-process cache.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from marketcache.v1 import cache_pb2
from services.cache.server import CacheServer
from services.cli.app import cli
from services.common.json_value import from_value
from tests.cache.harness import ADMIN_TOKEN, cache_stub
from tests.conftest import free_port


async def run(server: CacheServer, *args: str, token: bool = True) -> Result:
    options = ["--addr", server.address] + (["--token", ADMIN_TOKEN] if token else [])
    return await asyncio.to_thread(
        CliRunner().invoke, cli, [*options, *args], env={"ADMIN_TOKEN": ""}
    )


def lines(result: Result) -> list[Any]:
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_set_get_mget_ttl_del(server: CacheServer) -> None:
    assert (
        await run(server, "set", "stock:AAPL", '{"price": 189.5}', "--ttl", "120")
    ).exit_code == 0
    got = await run(server, "get", "stock:AAPL")
    assert got.exit_code == 0 and json.loads(got.stdout) == {"price": 189.5}
    ttl = await run(server, "ttl", "stock:AAPL")
    assert ttl.exit_code == 0 and 118 <= int(ttl.stdout) <= 120
    mget = await run(server, "mget", "stock:AAPL", "stock:NONE")
    assert lines(mget) == [{"price": 189.5}, None]
    deleted = await run(server, "del", "stock:AAPL", "stock:NONE")
    assert lines(deleted) == [{"deleted": 1}]
    miss = await run(server, "get", "stock:AAPL")
    assert (miss.exit_code, miss.stdout) == (1, "")
    assert (await run(server, "ttl", "stock:AAPL")).exit_code == 1


async def test_bad_input_exits_2_and_an_unreachable_cache_exits_3(server: CacheServer) -> None:
    bad_json = await run(server, "set", "stock:X", "{nope")
    assert bad_json.exit_code == 2 and "is not JSON" in bad_json.stderr
    bad_key = await run(server, "get", "nokey")
    assert bad_key.exit_code == 2 and "has no prefix" in bad_key.stderr
    no_token = await run(server, "export", token=False)
    assert no_token.exit_code == 2 and "ADMIN_TOKEN" in no_token.stderr
    gone = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--addr", f"127.0.0.1:{free_port()}", "--timeout", "1", "get", "stock:X"],
    )
    assert gone.exit_code == 3 and "unreachable" in gone.stderr


async def test_scan_follows_cursors_with_match(server: CacheServer) -> None:
    for i in range(7):
        assert (await run(server, "set", f"scan:k{i}", str(i))).exit_code == 0
    await run(server, "set", "scan:other", "0")
    result = await run(server, "scan", "scan", "--match", "scan:k*", "--count", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [f"scan:k{i}" for i in range(7)]


async def test_stat_health_owners_latency_print_json_off_a_terminal(server: CacheServer) -> None:
    await run(server, "get", "stat:miss")
    stat = await run(server, "stat", "--interval", "0.05", "--count", "2")
    assert stat.exit_code == 0, stat.stderr
    rows = lines(stat)
    assert len(rows) == 2
    assert set(rows[0]) == {"hits", "misses", "hitRate", "keys", "memoryBytes", "opsPerSecond"}
    health = lines(await run(server, "health"))[0]
    assert health["status"] == "healthy"
    owners = lines(await run(server, "owners"))[0]
    assert [m["nodeId"] for m in owners["members"]] == ["node-a"]
    latency = lines(await run(server, "latency", "--count", "5"))[0]
    assert latency["count"] == 5
    assert latency["minMs"] <= latency["p50Ms"] <= latency["p99Ms"] <= latency["maxMs"]


async def test_export_clear_import_round_trip(server: CacheServer, tmp_path: Path) -> None:
    await run(server, "set", "rt:a", '{"x": [1, null, "y"]}', "--ttl", "300")
    await run(server, "set", "rt:b", "null", "--ttl", "900")
    dump = tmp_path / "dump.jsonl"
    exported = await run(server, "export", "--prefix", "rt", "--output", str(dump))
    assert exported.exit_code == 0, exported.stderr
    before = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [(e["key"], e["value"]) for e in before] == [
        ("rt:a", {"x": [1, None, "y"]}),
        ("rt:b", None),
    ]
    async with cache_stub(server.address) as stub:
        await stub.Clear(
            cache_pb2.ClearRequest(prefix="rt"),
            metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),),
        )
        assert (await run(server, "get", "rt:a")).exit_code == 1
        imported = await run(server, "import", str(dump))
        assert imported.exit_code == 0, imported.stderr
        assert "2 entries imported" in imported.stderr
        for entry in before:
            reply = await stub.Get(cache_pb2.GetRequest(key=entry["key"]))
            assert reply.found and from_value(reply.value) == entry["value"]
            assert abs(reply.ttl_remaining_seconds - entry["ttlSeconds"]) <= 1


async def test_a_malformed_line_is_named_and_its_chunk_not_applied(
    server: CacheServer, tmp_path: Path
) -> None:
    rows = [json.dumps({"key": f"bulk:{i:04d}", "value": i, "ttlSeconds": 600}) for i in range(600)]
    rows[549] = '{"key": "bulk:0549", "value": '  # line 550, in the second chunk of 500
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(rows) + "\n")
    result = await run(server, "import", str(source))
    assert result.exit_code == 2
    assert "line 550: not JSON" in result.stderr and "500 entries" in result.stderr
    scanned = await run(server, "scan", "bulk", "--count", "1000")
    assert scanned.stdout.split() == [f"bulk:{i:04d}" for i in range(500)]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"key": "nokey", "value": 1}', "line 2: chunk 1: entries[1].key"),
        (
            '{"key": "ok:x", "value": 1, "ttlSeconds": 99999999999}',
            "line 2: chunk 1: entries[1].ttl_seconds",
        ),
        ('{"key": "ok:x"}', 'line 2: "value" is missing'),
        ('{"key": "ok:x", "value": 1, "extra": 2}', "line 2: unknown field(s) extra"),
    ],
)
async def test_a_refused_entry_is_named_by_its_line(
    server: CacheServer, tmp_path: Path, line: str, words: str
) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"key": "ok:first", "value": 0}\n' + line + "\n")
    result = await run(server, "import", str(source))
    assert result.exit_code == 2 and words in result.stderr, result.stderr
    assert (await run(server, "get", "ok:first")).exit_code == 1  # nothing of the chunk applied
