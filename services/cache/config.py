"""CacheService settings, read once from the environment (every variable is in the README)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.common.config import ConfigError, Env
from services.common.server import ServerOptions

MIB = 1024 * 1024
DAY = 86_400

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


@dataclass(frozen=True)
class CacheSettings:
    """Everything the cache process is configured with; built by `from_env`."""

    server: ServerOptions
    db_url: str
    node_id: str
    # Address other processes and clients reach this node at; the bound gRPC
    # address when unset.
    advertise_addr: str | None
    lease_seconds: float
    max_memory_bytes: int
    max_value_bytes: int
    max_batch: int
    default_ttl: int
    max_ttl: int
    sweep_seconds: float
    prefix_depth: int
    max_prefix_queue: int
    admin_token: str | None
    enabled: bool
    # PRAGMA synchronous for SQLite: "full" keeps the promise that an
    # acknowledged write survives power loss; "normal" only survives a crash.
    sqlite_synchronous: str = "full"
    read_threads: int = 4
    # Most writes one commit carries (a bigger group waits for the next one).
    commit_max_batch: int = 2048
    # Distinct prefixes that get their own metric label; the rest are "other".
    max_prefix_labels: int = 200
    # Take over at once the leases of a cache process on this host that has exited
    # (rather than waiting for them to expire); see liveness.py.
    detect_local_exits: bool = True
    # Refuse to start on a PostgreSQL that does not replicate synchronously.
    require_sync_replication: bool = False
    # CACHE_DB_URLS: two or more databases, each the home of the prefixes rendezvous
    # hashing gives it (shards.py); empty: the one database of db_url.
    db_urls: tuple[str, ...] = ()
    # Writes are refused (RESOURCE_EXHAUSTED) once the database is this big; 0: no quota.
    db_max_bytes: int = 0

    @classmethod
    def from_env(cls, env: Env | None = None) -> CacheSettings:
        """Read and check every CACHE_* variable; ConfigError names the bad one."""
        env = env or Env()
        server = ServerOptions.from_env(
            env,
            "cache",
            "CACHE_LISTEN",
            "127.0.0.1:50051",
            "CACHE_METRICS_LISTEN",
            "127.0.0.1:9101",
        )
        max_ttl = env.integer("CACHE_MAX_TTL", 30 * DAY, minimum=1)
        default_ttl = env.integer("CACHE_DEFAULT_TTL", 3600, minimum=1)
        if default_ttl > max_ttl:
            raise ConfigError(
                f"CACHE_DEFAULT_TTL: {default_ttl} is above CACHE_MAX_TTL ({max_ttl})"
            )
        advertise = env.optional("CACHE_ADVERTISE_ADDR")
        if advertise is not None:
            env.address("CACHE_ADVERTISE_ADDR", advertise)
        urls = _db_urls(env)
        return cls(
            server=server,
            db_url=urls[0],
            db_urls=urls if len(urls) > 1 else (),
            require_sync_replication=env.flag("CACHE_REQUIRE_SYNC_REPLICATION", False),
            node_id=env.string("CACHE_NODE_ID", f"{socket.gethostname()}-{os.getpid()}"),
            advertise_addr=advertise,
            lease_seconds=env.number("CACHE_LEASE_SECONDS", 10.0, minimum=1.0, maximum=3600.0),
            max_memory_bytes=size(env, "CACHE_MAX_MEMORY_BYTES", 256 * MIB, minimum=0),
            max_value_bytes=size(env, "CACHE_MAX_VALUE_BYTES", MIB, minimum=16),
            max_batch=env.integer("CACHE_MAX_BATCH", 1000, minimum=1, maximum=100_000),
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            sweep_seconds=env.number("CACHE_SWEEP_SECONDS", 30.0, minimum=0.01, maximum=DAY),
            prefix_depth=env.integer("CACHE_PREFIX_DEPTH", 1, minimum=1, maximum=8),
            max_prefix_queue=env.integer("CACHE_MAX_PREFIX_QUEUE", 1024, minimum=1),
            admin_token=env.optional("ADMIN_TOKEN"),
            enabled=env.flag("CACHE_ENABLED", True),
            sqlite_synchronous=env.choice(
                "CACHE_SQLITE_SYNCHRONOUS", "full", ("full", "normal", "extra")
            ),
            read_threads=env.integer("CACHE_READ_THREADS", 4, minimum=1, maximum=64),
            commit_max_batch=env.integer("CACHE_COMMIT_MAX_BATCH", 2048, minimum=1),
            max_prefix_labels=env.integer("CACHE_MAX_PREFIX_LABELS", 200, minimum=1),
            detect_local_exits=env.flag("CACHE_DETECT_LOCAL_EXITS", True),
            db_max_bytes=size(env, "CACHE_DB_MAX_BYTES", 0, minimum=0),
        )


def _db_urls(env: Env) -> tuple[str, ...]:
    """CACHE_DB_URL, or the shards of CACHE_DB_URLS (never both)."""
    one = env.optional("CACHE_DB_URL")
    many = env.optional("CACHE_DB_URLS")
    if many is None:
        url = one if one is not None else "sqlite:///./var/cache.db"
        return (check_db_url("CACHE_DB_URL", url),)
    if one is not None:
        raise ConfigError(
            "CACHE_DB_URL and CACHE_DB_URLS are both set: set CACHE_DB_URLS alone to shard "
            "prefixes over several databases, or CACHE_DB_URL alone for one"
        )
    urls = tuple(u for u in re.split(r"[\s,]+", many) if u)
    if not urls:
        raise ConfigError("CACHE_DB_URLS: empty; give one or more PostgreSQL URLs")
    if len(set(urls)) != len(urls):
        raise ConfigError("CACHE_DB_URLS: the same URL is listed twice")
    if len({shard_identity(u) for u in urls}) != len(urls):
        raise ConfigError(
            "CACHE_DB_URLS: two URLs differ only in their password: that is one database twice"
        )
    for url in urls:
        check_db_url("CACHE_DB_URLS", url)
        if len(urls) > 1 and make_url(url).get_backend_name() != "postgresql":
            raise ConfigError(
                f"CACHE_DB_URLS: shards must be PostgreSQL databases, got {url.split(':')[0]}:..."
            )
    return urls


def shard_identity(url: str) -> str:
    """What names a shard in the rendezvous hashing: its URL without the password (a
    rotated password must not move every prefix)."""
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def check_db_url(name: str, url: str) -> str:
    """`url` when the cache can use it; ConfigError naming `name` and the fix otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{name}: not a database URL: {url.rsplit('@', maxsplit=1)[-1]!r} "
            "(expected sqlite:///path/cache.db or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{name}: unsupported database {parsed.get_backend_name()!r}: "
            "use sqlite:///... or postgresql+psycopg://..."
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"{name}: SQLite needs a file path, e.g. sqlite:///./var/cache.db")
    if parsed.get_backend_name() == "postgresql":
        _check_hosts(name, parsed.query)
    return url


def _check_hosts(name: str, query: Mapping[str, str | tuple[str, ...]]) -> None:
    """Several hosts (a failover pair) must say which one to write to."""
    raw = query.get("host", ())
    hosts = [h for part in ((raw,) if isinstance(raw, str) else raw) for h in part.split(",")]
    if len(hosts) < 2:
        return
    if any(":" in h for h in hosts) and isinstance(raw, str) and "," in raw:
        raise ConfigError(
            f"{name}: write several hosts as ?host=h1:5432&host=h2:5432 or as "
            "?host=h1,h2&port=5432,5432 (libpq cannot read host:port inside a list)"
        )
    attrs = query.get("target_session_attrs")
    if attrs not in ("read-write", "primary"):
        raise ConfigError(
            f"{name}: {len(hosts)} hosts but no target_session_attrs=read-write: after a "
            "failover the cache could connect to a read-only standby; add "
            "&target_session_attrs=read-write"
        )


def size(env: Env, name: str, default: int, *, minimum: int = 0) -> int:
    """A byte size: a plain number or one with a unit (512KiB, 256MiB, 1GiB)."""
    raw = env.optional(name)
    if raw is None:
        return default
    match = _SIZE.match(raw)
    if match is None:
        raise ConfigError(f"{name}: expected a size in bytes like 268435456 or 256MiB, got {raw!r}")
    unit = (match.group(2) or "").lower()[:1]
    value = int(match.group(1)) * _UNITS[unit]
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum} bytes, got {value}")
    return value
