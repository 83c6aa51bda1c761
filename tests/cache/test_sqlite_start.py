"""A node opening an SQLite file beside others that are creating or writing it waits its
turn; it never fails with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from services.cache.storage.db import CacheDb
from tests.cache.harness import sqlite_url

HELD_SECONDS = 0.5


def test_opening_waits_while_another_process_turns_a_fresh_file_to_wal(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    path = url.removeprefix("sqlite:///")
    # A fresh file, still in rollback-journal mode, with a write under way: what a node
    # starting a moment earlier holds while it switches the file to WAL. SQLite answers
    # PRAGMA journal_mode=WAL at once with SQLITE_BUSY then, without its busy handler.
    other = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE started_first (x)")
    outcome: list[BaseException | None] = []
    opened = threading.Event()

    def open_db() -> None:
        db = CacheDb(url)
        try:
            db.create_schema()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            db.dispose()
            opened.set()

    opener = threading.Thread(target=open_db)
    opener.start()
    try:
        # The opener fails at once or waits: either way it is done, or still
        # waiting, after HELD_SECONDS (not a timing assertion).
        opened.wait(HELD_SECONDS)
    finally:
        other.execute("COMMIT")
        other.close()
        opener.join(60)
    assert not opener.is_alive(), "create_schema did not return once the file was free"
    assert outcome == [None], f"a node starting beside another failed: {outcome[0]!r}"
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
