"""Sharded cache servers over fresh PostgreSQL databases, and what tests ask of each shard."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from services.cache.config import shard_identity
from services.cache.server import CacheServer
from services.cache.shards.homes import home
from tests.cache.harness import cache_env, make_server


def shard_env(tmp_path: Path, urls: Sequence[str], **extra: str) -> dict[str, str]:
    """A cache's environment on CACHE_DB_URLS (no CACHE_DB_URL)."""
    env = cache_env(tmp_path, CACHE_DB_URLS=",".join(urls), **extra)
    del env["CACHE_DB_URL"]
    return env


def sharded_server(
    tmp_path: Path, urls: Sequence[str], registry: CollectorRegistry | None = None, **extra: str
) -> CacheServer:
    """An in-process cache (not started) with one shard per URL."""
    return make_server(
        tmp_path, registry or CollectorRegistry(), shard_env(tmp_path, urls, **extra)
    )


def home_of(prefix: str, urls: Sequence[str]) -> int:
    """The index of `prefix`'s home shard."""
    return home(prefix, [shard_identity(u) for u in urls])


def prefixes_in(shard: int, urls: Sequence[str], count: int, stem: str = "p") -> list[str]:
    """`count` prefixes homed in `shard` (the first ones, in order)."""
    identities = [shard_identity(u) for u in urls]  # parsed once, not once per prefix
    homed = (p for p in (f"{stem}{i}" for i in range(10_000)) if home(p, identities) == shard)
    return list(itertools.islice(homed, count))


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on the database at SQLAlchemy `url` (autocommit)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(query, params)
        return list(cursor.fetchall()) if cursor.description else []


def prefixes_stored(url: str) -> set[str]:
    """The prefixes with entry rows in the database at `url`."""
    return {p for (p,) in sql(url, "SELECT DISTINCT prefix FROM cache_entries")}
