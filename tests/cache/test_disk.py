"""The disk guard on a real SQLite file made "full" by `PRAGMA max_page_count` (no
root needed): the first SQLITE_FULL raises the alarm and frees the reserve, writes
are then refused as not applied, and the probe takes the reserve back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from services.cache.errors import CacheError, Failure
from services.cache.storage.db import CacheDb
from services.cache.storage.disk import is_disk_full
from services.cache.storage.writes import Put


def _capped(tmp_path: Path) -> CacheDb:
    db = CacheDb(f"sqlite:///{tmp_path / 'cache.db'}", owner="n1")
    db.create_schema()

    @event.listens_for(db.engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA max_page_count = 64")

    db.engine.dispose()  # reconnect with the cap
    return db


def _fill(db: CacheDb) -> OperationalError:
    for i in range(1000):
        put = Put(f"p:{i}", "p", b"x" * 4000, 1e12, seq=i)
        try:
            db.apply([[put]], now=0.0)
        except OperationalError as exc:
            return exc
    raise AssertionError("1000 pages written under a 64-page cap")


def test_a_full_database_raises_the_alarm_frees_the_reserve_and_recovers(tmp_path: Path) -> None:
    db = _capped(tmp_path)
    reserve = tmp_path / "cache.db.reserve-n1"
    db.disk.take_reserve()
    assert reserve.stat().st_size > 0 and not db.disk.full
    db.disk.check()  # no alarm: nothing raised

    exc = _fill(db)
    assert is_disk_full(exc)
    assert db.disk.full and not reserve.exists()
    with pytest.raises(CacheError) as refused:
        db.disk.check()
    assert refused.value.failure is Failure.DISK_FULL
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "is full" in refused.value.message and "not applied" in refused.value.message
    error = db.disk.refusal(exc)
    assert error is not None and error.failure is Failure.DISK_FULL

    db.disk.probe()  # the real disk has room: the reserve is back, the alarm clear
    assert reserve.exists() and not db.disk.full
    db.disk.release()
    assert not reserve.exists()


def test_other_errors_are_not_a_full_disk(tmp_path: Path) -> None:
    db = CacheDb(f"sqlite:///{tmp_path / 'cache.db'}")
    assert db.disk.refusal(RuntimeError("disk on fire")) is None
    assert not is_disk_full(OperationalError("SELECT 1", {}, Exception("database is locked")))


def test_the_quota_refuses_once_the_database_reaches_it_and_clears_below(tmp_path: Path) -> None:
    db = CacheDb(f"sqlite:///{tmp_path / 'cache.db'}", max_bytes=1)
    db.create_schema()
    db.disk.probe()
    assert db.disk.reason == "quota"
    with pytest.raises(CacheError, match="CACHE_DB_MAX_BYTES"):
        db.disk.check()
    db.disk.max_bytes = 1 << 30
    db.disk.probe()
    assert not db.disk.full
