"""The lease transactions: heartbeat and renewal, acquisition, release, leaving.

Blocking; run on the store's writer thread, so they never interleave with a
commit of this process. Every time here is on the database's clock (see
`CacheDb.clock`); `started` is this process's monotonic clock read before the
transaction began, which is what local lease validity counts from.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, or_, select, update
from sqlalchemy.exc import OperationalError

from services.cache.ownership.lapsed import end_lapsed_owner_sessions, is_lock_timeout
from services.cache.storage.db import CacheDb
from services.cache.storage.tables import leases, members

# Prefixes taken in one transaction at most (acquire_many).
ACQUIRE_CHUNK = 256
# A dead member's row is kept this long after it expired (ListOwners shows it), then pruned.
MEMBER_RETENTION_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Incarnation:
    """This process as the lease tables know it."""

    node_id: str
    # Random per process start: leases belong to an incarnation, not to a node id.
    token: str
    pid: int
    # Boot and PID namespace (see liveness.py); "" where unknown.
    host: str


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A prefix's lease as stored."""

    prefix: str
    owner_id: str
    owner_addr: str
    owner_token: str
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A process incarnation as stored."""

    token: str
    node_id: str
    address: str
    pid: int
    host: str
    heartbeat_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat saw: our renewed leases and the whole table."""

    started: float
    db_now: float
    # prefix -> epoch of every lease still ours, now renewed.
    renewed: dict[str, int]
    members: list[MemberRow]
    leases: list[LeaseRow]


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of trying to acquire one prefix."""

    started: float
    db_now: float
    acquired: bool
    # The lease after the attempt: ours when acquired, else its holder's.
    lease: LeaseRow
    # The lease before the attempt (None when the prefix had none).
    previous: LeaseRow | None


class LeaseDb:
    """The SQL of ownership, for one process incarnation."""

    def __init__(
        self,
        db: CacheDb,
        me: Incarnation,
        address: Callable[[], str],
        lease_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._db = db
        self.me = me
        self.address = address
        self.lease_seconds = lease_seconds
        self._monotonic = monotonic
        # Waits for another process's row lock end well inside a lease.
        self._lock_timeout = max(0.1, lease_seconds / 4)

    def heartbeat(self) -> Beat:
        """Refresh our member row, renew every lease still ours, read both tables."""
        started = self._monotonic()
        with self._db.transaction(lock_timeout=self._lock_timeout) as conn:
            now = self._db.clock(conn)
            self._upsert_member(conn, now)
            renewed = conn.execute(
                update(leases)
                .where(leases.c.owner_token == self.me.token, leases.c.expires_at > 0)
                .values(expires_at=now + self.lease_seconds, owner_addr=self.address())
                .returning(leases.c.prefix, leases.c.epoch)
            ).all()
            conn.execute(
                delete(members).where(members.c.expires_at < now - MEMBER_RETENTION_SECONDS)
            )
            member_rows = [_member(r) for r in conn.execute(select(members)).mappings()]
            lease_rows = [_lease(r) for r in conn.execute(select(leases)).mappings()]
        return Beat(
            started, now, {r.prefix: int(r.epoch) for r in renewed}, member_rows, lease_rows
        )

    def _upsert_member(self, conn: Connection, now: float) -> None:
        me = self.me
        row = {
            "token": me.token,
            "node_id": me.node_id,
            "address": self.address(),
            "pid": me.pid,
            "host": me.host,
            "started_at": now,
            "heartbeat_at": now,
            "expires_at": now + self.lease_seconds,
        }
        stmt = self._db.insert(members).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[members.c.token],
            set_={
                "address": stmt.excluded.address,
                "heartbeat_at": stmt.excluded.heartbeat_at,
                "expires_at": stmt.excluded.expires_at,
            },
        )
        conn.execute(stmt)

    def acquire(self, prefix: str, exited: Collection[str] = ()) -> Claim:
        """Take `prefix` if its lease is free: missing, expired, released, already ours,
        or held by one of the `exited` incarnations (proven gone). Epoch +1 unless ours.

        On PostgreSQL, a lease row still locked by its lapsed owner's session (a
        link gone silent mid-commit) has that session ended, then one more try.
        """
        try:
            return self._acquire([prefix], exited)[prefix]
        except OperationalError as exc:
            if self._db.dialect != "postgresql" or not is_lock_timeout(exc):
                raise
            with self._db.transaction(lock_timeout=self._lock_timeout) as conn:
                if not end_lapsed_owner_sessions(conn, prefix, self.me.token):
                    raise
            return self._acquire([prefix], exited)[prefix]

    def acquire_many(
        self, prefixes: Sequence[str], exited: Collection[str] = ()
    ) -> dict[str, Claim]:
        """`acquire` of each of `prefixes`: a few statements per ACQUIRE_CHUNK of them.

        A dead owner's prefixes are taken together. One at a time, each its own
        transaction queued on the writer thread, a few hundred of them took seconds,
        and the heartbeat waited behind them until the node's own leases lapsed. A
        chunk that meets a locked row (PostgreSQL: another node taking the same
        prefix, or a lapsed owner's session) is taken one prefix at a time instead;
        a prefix still locked then is left out of the answer.
        """
        ordered = sorted(set(prefixes))
        claims: dict[str, Claim] = {}
        for at in range(0, len(ordered), ACQUIRE_CHUNK):
            chunk = ordered[at : at + ACQUIRE_CHUNK]
            if len(chunk) == 1:
                # acquire's own lock handling, without a first wait for the lock here.
                claims[chunk[0]] = self.acquire(chunk[0], exited)
                continue
            try:
                claims.update(self._acquire(chunk, exited))
            except OperationalError as exc:
                if self._db.dialect != "postgresql" or not is_lock_timeout(exc):
                    raise
                for prefix in chunk:
                    try:
                        claims[prefix] = self.acquire(prefix, exited)
                    except OperationalError as one:
                        # Left out: the caller tries it again shortly.
                        if not is_lock_timeout(one):
                            raise
        return claims

    def _acquire(self, prefixes: Sequence[str], exited: Collection[str]) -> dict[str, Claim]:
        """One transaction: insert the missing leases, take the free ones, read the rest."""
        started = self._monotonic()
        me = self.me
        with self._db.transaction(lock_timeout=self._lock_timeout) as conn:
            now = self._db.clock(conn)
            expires = now + self.lease_seconds
            before = self._read(conn, prefixes)
            claims: dict[str, Claim] = {}
            missing = [prefix for prefix in prefixes if prefix not in before]
            if missing:
                rows = [
                    {
                        "prefix": prefix,
                        "owner_id": me.node_id,
                        "owner_addr": self.address(),
                        "owner_token": me.token,
                        "epoch": 1,
                        "expires_at": expires,
                        "acquired_at": now,
                    }
                    for prefix in missing
                ]
                inserted = conn.execute(
                    self._db.insert(leases)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=[leases.c.prefix])
                    .returning(*leases.c)
                ).mappings()
                for row in inserted:
                    claims[row["prefix"]] = Claim(started, now, True, _lease(row), None)
                # Another process inserted these first.
                before |= self._read(conn, [p for p in missing if p not in claims])
            contested = [prefix for prefix in prefixes if prefix not in claims]
            if not contested:
                return claims
            ours_and_live = (leases.c.owner_token == me.token) & (leases.c.expires_at > now)
            # A conditional UPDATE, not SELECT ... FOR UPDATE: a live lease's row is
            # never locked by a node merely asking, so its owner's writes never wait.
            # On PostgreSQL a row changed concurrently is re-checked against this WHERE.
            taken = conn.execute(
                update(leases)
                .where(
                    leases.c.prefix.in_(contested),
                    or_(
                        leases.c.expires_at <= now,
                        leases.c.owner_token == me.token,
                        leases.c.owner_token.in_(sorted(exited)),
                    ),
                )
                .values(
                    owner_id=me.node_id,
                    owner_addr=self.address(),
                    owner_token=me.token,
                    epoch=case((ours_and_live, leases.c.epoch), else_=leases.c.epoch + 1),
                    acquired_at=case((ours_and_live, leases.c.acquired_at), else_=now),
                    expires_at=expires,
                )
                .returning(*leases.c)
            ).mappings()
            for row in taken:
                prefix = row["prefix"]
                claims[prefix] = Claim(started, now, True, _lease(row), before.get(prefix))
            held = self._read(conn, [p for p in contested if p not in claims])
            for prefix, current in held.items():
                claims[prefix] = Claim(started, now, False, current, before.get(prefix))
        return claims

    def _read(self, conn: Connection, prefixes: Sequence[str]) -> dict[str, LeaseRow]:
        if not prefixes:
            return {}
        rows = conn.execute(select(leases).where(leases.c.prefix.in_(prefixes))).mappings()
        return {row["prefix"]: _lease(row) for row in rows}

    def release(self, held: Mapping[str, int]) -> int:
        """Give up these leases (prefix -> our epoch) at once: expires_at = 0. How many."""
        if not held:
            return 0
        stmt = (
            update(leases)
            .where(
                leases.c.prefix == bindparam("p"),
                leases.c.owner_token == self.me.token,
                leases.c.epoch == bindparam("e"),
            )
            .values(expires_at=0.0)
        )
        with self._db.transaction(lock_timeout=self._lock_timeout) as conn:
            result = conn.execute(stmt, [{"p": p, "e": e} for p, e in held.items()])
            return int(result.rowcount)

    def leave(self) -> int:
        """Release every lease of ours and delete our member row; how many leases."""
        with self._db.transaction(lock_timeout=self._lock_timeout) as conn:
            released = conn.execute(
                update(leases)
                .where(leases.c.owner_token == self.me.token, leases.c.expires_at > 0)
                .values(expires_at=0.0)
            ).rowcount
            conn.execute(delete(members).where(members.c.token == self.me.token))
        return int(released)


def _lease(r: Any) -> LeaseRow:
    return LeaseRow(
        prefix=r["prefix"],
        owner_id=r["owner_id"],
        owner_addr=r["owner_addr"],
        owner_token=r["owner_token"],
        epoch=int(r["epoch"]),
        expires_at=float(r["expires_at"]),
    )


def _member(r: Any) -> MemberRow:
    return MemberRow(
        token=r["token"],
        node_id=r["node_id"],
        address=r["address"],
        pid=int(r["pid"]),
        host=r["host"],
        heartbeat_at=float(r["heartbeat_at"]),
        expires_at=float(r["expires_at"]),
    )
