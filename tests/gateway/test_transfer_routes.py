"""Scan, export and import over REST, through a real gateway in front of a real cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.stack import TOKEN, Stack, gateway_stack, request

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with gateway_stack(tmp_path_factory.mktemp("transfer")) as up:
        yield up


def put(stack: Stack, key: str, value: object, ttl: int) -> None:
    reply = request(
        stack.url,
        "PUT",
        f"/api/v1/cache/keys/{key}",
        {"value": value, "ttlSeconds": ttl},
        token=TOKEN,
    )
    assert reply.status == 200, reply.body


def test_scan_is_a_read_with_cursor_limit_and_match(stack: Stack) -> None:
    for i in range(5):
        put(stack, f"rscan:k{i}", i, 600)
    keys: list[str] = []
    cursor = ""
    while True:
        reply = request(
            stack.url,
            "GET",
            f"/api/v1/cache/prefixes/rscan/keys?limit=2&match=rscan:k*&cursor={cursor}",
        )
        assert reply.status == 200, reply.body
        keys += reply.body.get("keys", [])
        cursor = reply.body.get("nextCursor", "")
        if not cursor:
            break
    assert keys == [f"rscan:k{i}" for i in range(5)]
    bad = request(stack.url, "GET", "/api/v1/cache/prefixes/rscan/keys?limit=-3")
    assert bad.status == 400 and "limit -3" in bad.body["message"]


def test_export_clear_import_over_rest(stack: Stack) -> None:
    put(stack, "rrt:a", {"x": [1, None]}, 300)
    put(stack, "rrt:b", "text", 900)
    exported = request(stack.url, "GET", "/api/v1/cache/export?prefix=rrt", token=TOKEN)
    assert exported.status == 200 and exported.headers["Content-Type"].startswith(
        "application/x-ndjson"
    )
    before = [json.loads(line) for line in exported.body.splitlines()]
    assert [(e["key"], e["value"]) for e in before] == [
        ("rrt:a", {"x": [1, None]}),
        ("rrt:b", "text"),
    ]
    assert request(stack.url, "DELETE", "/api/v1/cache/prefixes/rrt", token=TOKEN).status == 200
    imported = request(
        stack.url, "POST", "/api/v1/cache/import", raw=exported.body.encode(), token=TOKEN
    )
    assert (imported.status, imported.body) == (200, {"imported": 2, "chunks": 1})
    again = request(stack.url, "GET", "/api/v1/cache/export?prefix=rrt", token=TOKEN)
    after = [json.loads(line) for line in again.body.splitlines()]
    assert [(e["key"], e["value"]) for e in after] == [(e["key"], e["value"]) for e in before]
    assert all(
        abs(a["ttlSeconds"] - b["ttlSeconds"]) <= 1 for a, b in zip(after, before, strict=True)
    )


def test_a_bad_line_is_a_400_naming_the_line(stack: Stack, tmp_path: Path) -> None:
    body = b'{"key": "rbad:a", "value": 1}\n\n{"key": "rbad:b", "value": }\n'
    reply = request(stack.url, "POST", "/api/v1/cache/import", raw=body, token=TOKEN)
    assert reply.status == 400 and reply.body["message"].startswith("line 3: not JSON")
    refused = request(
        stack.url,
        "POST",
        "/api/v1/cache/import",
        raw=b'{"key": "nokey", "value": 1}\n',
        token=TOKEN,
    )
    assert refused.status == 400 and refused.body["message"].startswith(
        "line 1: chunk 1: entries[0].key"
    )
    assert request(stack.url, "GET", "/api/v1/cache/keys/rbad:a").body["found"] is False


def test_export_and_import_are_admin_only(stack: Stack) -> None:
    for method, path in (("GET", "/api/v1/cache/export"), ("POST", "/api/v1/cache/import")):
        assert request(stack.url, method, path, raw=b"" if method == "POST" else None).status == 401
        wrong = request(
            stack.url, method, path, raw=b"" if method == "POST" else None, token="nope"
        )
        assert wrong.status == 403
    assert request(stack.url, "PUT", "/api/v1/cache/export", token=TOKEN).status == 405
