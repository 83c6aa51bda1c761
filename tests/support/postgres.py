"""A fresh PostgreSQL database per test on the server of this machine.

Under CI=true an unreachable server fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_DSN = os.environ.get(
    "MARKETCACHE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _connect(dsn: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=3)


def require_postgres() -> None:
    """Fail (CI) or skip (a user's machine) when PostgreSQL cannot be reached."""
    try:
        with _connect(PG_ADMIN_DSN) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        message = f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create a uniquely named database; yield its SQLAlchemy URL; drop it afterwards."""
    require_postgres()
    name = f"mc_test_{uuid.uuid4().hex[:12]}"
    with _connect(PG_ADMIN_DSN) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with _connect(PG_ADMIN_DSN) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
