"""The lease transactions on a real database (SQLite file or PostgreSQL): acquisition,
expiry, release, takeover from an exited process, renewal, and fencing of commits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.cache.ownership.lease_db import Incarnation, LeaseDb
from services.cache.storage.db import CacheDb
from services.cache.storage.writes import STORED, Put
from tests.support.polling import eventually

LEASE = 0.3


@pytest.fixture
def db(db_url: str) -> Iterator[CacheDb]:
    cache_db = CacheDb(db_url)
    cache_db.create_schema()
    try:
        yield cache_db
    finally:
        cache_db.dispose()


def node(db: CacheDb, name: str, lease: float = LEASE) -> LeaseDb:
    me = Incarnation(node_id=name, token=f"{name}-token", pid=1, host="")
    return LeaseDb(db, me, lambda: f"{name}.local:1", lease, time.monotonic)


def put(prefix: str, epoch: int, value: bytes = b"v") -> Put:
    return Put(f"{prefix}:k", prefix, value, time.time() + 60, seq=1, epoch=epoch)


async def test_a_free_prefix_is_acquired_at_epoch_1_and_held_against_others(db: CacheDb) -> None:
    a, b = node(db, "a", lease=60), node(db, "b", lease=60)
    claim = a.acquire("stock")
    assert claim.acquired and claim.previous is None
    assert (claim.lease.owner_id, claim.lease.owner_addr, claim.lease.epoch) == (
        "a",
        "a.local:1",
        1,
    )
    refused = b.acquire("stock")
    assert not refused.acquired
    assert (refused.lease.owner_id, refused.lease.epoch) == ("a", 1)
    again = a.acquire("stock")  # ours and live: extended, same epoch
    assert again.acquired and again.lease.epoch == 1
    assert again.lease.expires_at >= claim.lease.expires_at


async def test_an_expired_lease_is_taken_over_with_the_next_epoch(db: CacheDb) -> None:
    a, b = node(db, "a"), node(db, "b")
    assert a.acquire("stock").acquired
    await eventually(lambda: b.acquire("stock").acquired, 10, "never taken over after expiry")
    beat = a.heartbeat()
    assert "stock" not in beat.renewed  # the old owner's renewal finds it gone
    lease = {row.prefix: row for row in beat.leases}["stock"]
    assert (lease.owner_id, lease.epoch) == ("b", 2)
    # Its own lease lapsed but not taken: re-acquiring starts a new tenure (epoch + 1).
    b_later = node(db, "b")
    await eventually(lambda: time.time() > lease.expires_at, 10, "lease never expired")
    assert b_later.acquire("stock").lease.epoch == 3


async def test_a_released_lease_is_free_at_once(db: CacheDb) -> None:
    a, b = node(db, "a", lease=60), node(db, "b", lease=60)
    assert a.acquire("news").acquired
    assert a.release({"news": 1}) in (1, -1)
    claim = b.acquire("news")
    assert claim.acquired and claim.lease.epoch == 2
    assert claim.previous is not None and claim.previous.expires_at == 0
    assert a.release({"news": 1}) in (0, -1)  # not ours any more: nothing happens
    assert b.acquire("news").lease.owner_id == "b"


async def test_the_lease_of_a_process_known_to_have_exited_is_taken_at_once(db: CacheDb) -> None:
    a, b = node(db, "a", lease=60), node(db, "b", lease=60)
    assert a.acquire("stock").acquired
    assert not b.acquire("stock", exited={"someone-else"}).acquired
    claim = b.acquire("stock", exited={"a-token"})
    assert claim.acquired and claim.lease.epoch == 2


async def test_a_heartbeat_renews_our_leases_and_reads_the_tables(db: CacheDb) -> None:
    a, b = node(db, "a"), node(db, "b")
    a.acquire("p1")
    a.acquire("p2")
    b.acquire("p3")
    beat = a.heartbeat()
    assert beat.renewed == {"p1": 1, "p2": 1}
    assert {m.node_id for m in beat.members} == {"a"}
    b.heartbeat()
    beat = a.heartbeat()
    assert {m.node_id: m.address for m in beat.members} == {"a": "a.local:1", "b": "b.local:1"}
    assert {row.prefix: row.owner_id for row in beat.leases} == {"p1": "a", "p2": "a", "p3": "b"}
    assert all(row.expires_at > beat.db_now for row in beat.leases if row.owner_id == "a")
    assert a.leave() == 2
    beat = b.heartbeat()
    assert {m.node_id for m in beat.members} == {"b"}
    assert {row.prefix for row in beat.leases if row.expires_at > beat.db_now} == {"p3"}


async def test_a_commit_is_fenced_per_submission_by_its_epoch(db: CacheDb) -> None:
    a, b = node(db, "a"), node(db, "b", lease=60)
    assert a.acquire("lost").acquired
    assert a.acquire("kept").lease.epoch == 1
    a.heartbeat()
    await eventually(lambda: b.acquire("lost").acquired, 10, "never taken over")
    kept = a.acquire("kept").lease.epoch  # ours again (a new tenure if it had lapsed)
    now = time.time()
    outcomes = db.apply(
        [
            [put("lost", 1, b"stale")],
            [put("kept", kept)],
            [put("kept", kept), put("lost", 1)],
            [put("kept", kept - 1 if kept > 1 else 99)],
        ],
        now,
        fence="a-token",
    )
    # The stale epoch's submissions are skipped whole; the others commit.
    assert outcomes == [None, [STORED], None, None]
    rows = db.get_many(["lost:k", "kept:k"], now)
    assert set(rows) == {"kept:k"}
    assert db.apply([[put("lost", 2, b"new")]], now, fence="b-token") == [[STORED]]
    assert db.get_many(["lost:k"], now)["lost:k"].blob == b"new"
    # Without a fence (one store alone on its database) nothing is checked.
    assert db.apply([[put("other", 7)]], now) == [[STORED]]


async def test_many_prefixes_are_taken_together_each_as_one_acquire_would(db: CacheDb) -> None:
    dead, a, b = node(db, "dead", lease=60), node(db, "a", lease=60), node(db, "b", lease=60)
    gone = [f"gone{i:03d}" for i in range(300)]
    for claim in dead.acquire_many(gone).values():
        assert claim.acquired and claim.lease.epoch == 1
    assert b.acquire("theirs").acquired
    assert a.acquire("mine").acquired
    wanted = [*gone, "theirs", "mine", "new"]

    claims = a.acquire_many(wanted, exited={"dead-token"})

    assert set(claims) == set(wanted)
    for prefix in gone:  # an exited owner's: taken, next epoch, the old lease reported
        claim = claims[prefix]
        assert claim.acquired and (claim.lease.owner_id, claim.lease.epoch) == ("a", 2)
        assert claim.previous is not None and claim.previous.owner_id == "dead"
    assert not claims["theirs"].acquired  # a live lease of another stays theirs
    assert (claims["theirs"].lease.owner_id, claims["theirs"].lease.epoch) == ("b", 1)
    assert claims["mine"].acquired and claims["mine"].lease.epoch == 1  # ours: extended
    assert claims["new"].acquired and claims["new"].lease.epoch == 1
    assert claims["new"].previous is None
    renewed = a.heartbeat().renewed
    assert set(renewed) == {*gone, "mine", "new"}


async def test_a_locked_lease_row_leaves_the_rest_of_a_takeover_to_go_on(pg_url: str) -> None:
    db = CacheDb(pg_url)
    db.create_schema()
    other = CacheDb(pg_url)
    try:
        # A 2 s lease waits 0.5 s for a row lock (lease / 4).
        dead, a = node(db, "dead", lease=2), node(db, "a", lease=2)
        prefixes = [f"p{i}" for i in range(20)]
        dead.acquire_many(prefixes)
        # Another session holds one row's lock (as a lapsed owner's commit would).
        with other.transaction() as conn:
            conn.exec_driver_sql("SELECT 1 FROM cache_leases WHERE prefix = 'p7' FOR UPDATE")
            claims = a.acquire_many(prefixes, exited={"dead-token"})
        assert "p7" not in claims  # still locked: left for the next attempt
        assert {p for p, c in claims.items() if c.acquired} == set(prefixes) - {"p7"}
        assert a.acquire("p7", exited={"dead-token"}).acquired  # the lock gone, it is taken
    finally:
        other.dispose()
        db.dispose()
