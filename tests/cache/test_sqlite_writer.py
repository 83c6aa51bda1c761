"""The writer's driver-level transaction for groups of Sets on SQLite (#22): the same
outcomes as the general path, committed together, and nothing of a failed group kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from services.cache.storage.db import CacheDb
from services.cache.storage.writes import STORED, Outcome, Put, Remove


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CacheDb]:
    cache_db = CacheDb(f"sqlite:///{tmp_path / 'cache.db'}")
    cache_db.create_schema()
    try:
        yield cache_db
    finally:
        cache_db.dispose()


def put(key: str, value: bytes, seq: int = 1) -> Put:
    return Put(key, key.partition(":")[0], value, time.time() + 60, seq=seq)


def test_a_group_of_sets_commits_together_and_the_last_write_of_a_key_wins(db: CacheDb) -> None:
    now = time.time()
    outcomes = db.apply(
        [[put("p:a", b"1"), put("p:b", b"2")], [put("p:a", b"3", seq=2)], [put("q:c", b"4")]], now
    )
    assert outcomes == [[STORED, STORED], [STORED], [STORED]]
    # Read through another pooled connection: committed, not just written.
    rows = db.get_many(["p:a", "p:b", "q:c"], now)
    assert {key: row.blob for key, row in rows.items()} == {"p:a": b"3", "p:b": b"2", "q:c": b"4"}


def test_a_group_with_a_delete_still_applies_in_order(db: CacheDb) -> None:
    now = time.time()
    db.apply([[put("p:a", b"1")]], now)
    outcomes = db.apply([[Remove("p:a", "p", seq=2)], [put("p:a", b"2", seq=3)]], now)
    assert outcomes == [[Outcome(1)], [STORED]]
    assert db.get_many(["p:a"], now)["p:a"].blob == b"2"


def test_a_failed_group_leaves_nothing_raises_as_sqlalchemy_and_the_writer_goes_on(
    db: CacheDb,
) -> None:
    now = time.time()
    bad = Put("p:bad", "p", None, now + 60, seq=1)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        db.apply([[put("p:a", b"1")], [bad]], now)
    assert db.get_many(["p:a", "p:bad"], now) == {}
    assert db.apply([[put("p:a", b"2")]], now) == [[STORED]]
    assert db.get_many(["p:a"], now)["p:a"].blob == b"2"


def test_a_group_larger_than_one_statement_is_written_whole(db: CacheDb) -> None:
    now = time.time()
    keys = [f"p:{i:04d}" for i in range(150)]  # three statements: 64, 64 and 22 rows
    assert db.apply([[put(key, key.encode()) for key in keys]], now) == [[STORED] * 150]
    rows = db.get_many(keys, now)
    assert {key: row.blob for key, row in rows.items()} == {key: key.encode() for key in keys}
