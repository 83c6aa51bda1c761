"""Change the shard list (CACHE_DB_URLS): move each prefix whose home changes.

    python -m services.cache.rebalance --from OLD_URLS --to NEW_URLS [--dry-run]

Run it with every cache stopped: it refuses while any database lists a live cache
member, since a running cache could write a prefix while its rows move. For each
prefix whose rendezvous home differs between the lists, it copies the prefix's
entry rows into the new home in one transaction (a row already there is kept if
newer), carries the lease epoch over (the larger of the two, released, so the next
owner's epoch is higher than any issued before), and only then deletes the rows
from the old home in a second transaction. Interrupted, it can be run again with
the same lists: copying is idempotent, and what was deleted was copied first.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, select

from services.cache.config import check_db_url, shard_identity
from services.cache.shards.homes import home
from services.cache.storage.db import CacheDb
from services.cache.storage.tables import entries, leases, members
from services.common.config import ConfigError

log = logging.getLogger(__name__)

# The owner named in a lease row the tool wrote: nobody, released.
MOVED_BY = "rebalance"


class RebalanceError(Exception):
    """The tool refused or failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Move:
    """One prefix leaving `source` for `target` (indexes into the databases)."""

    prefix: str
    source: int
    target: int


@dataclass(frozen=True, slots=True)
class Report:
    """What a run moved (or, dry, would move)."""

    prefixes: int
    rows: int


def parse_urls(flag: str, raw: str) -> list[str]:
    """A comma- or space-separated URL list, each checked as CACHE_DB_URLS would."""
    urls = [u for u in re.split(r"[\s,]+", raw) if u]
    if not urls:
        raise ConfigError(f"{flag}: no database URL given")
    return [check_db_url(flag, url) for url in urls]


def plan(dbs: Sequence[CacheDb], ids: Sequence[str], to_ids: Sequence[str]) -> list[Move]:
    """Every prefix with rows in a database that is not its home under `to_ids`."""
    moves = []
    for index, db in enumerate(dbs):
        with db.engine.connect() as conn:
            prefixes = conn.execute(select(entries.c.prefix).distinct()).scalars().all()
        for prefix in sorted(prefixes):
            target = ids.index(to_ids[home(prefix, to_ids)])
            if target != index:
                moves.append(Move(prefix, index, target))
    return moves


def refuse_live_members(dbs: Sequence[CacheDb]) -> None:
    """RebalanceError naming the live caches, if any database has one."""
    live = []
    for db in dbs:
        with db.transaction() as conn:
            now = db.clock(conn)
            rows = conn.execute(
                select(members.c.node_id, members.c.address).where(members.c.expires_at > now)
            ).all()
        live += [f"{node} at {address} (in {db.link.name})" for node, address in rows]
    if live:
        raise RebalanceError(
            f"{len(live)} cache members are alive: {', '.join(sorted(set(live)))}; stop every "
            "cache process first (their heartbeats expire within CACHE_LEASE_SECONDS)"
        )


def move(prefix: str, source: CacheDb, target: CacheDb) -> int:
    """Copy `prefix`'s rows and lease epoch to `target`, then delete them from `source`."""
    with source.engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(select(entries).where(entries.c.prefix == prefix))
        ]
        epoch = conn.execute(
            select(leases.c.epoch).where(leases.c.prefix == prefix)
        ).scalar_one_or_none()
    with target.transaction() as conn:
        now = target.clock(conn)
        if rows:
            stmt = target.insert(entries).values(rows)
            new = stmt.excluded
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[entries.c.key],
                    set_={
                        "prefix": new.prefix,
                        "value": new.value,
                        "expires_at": new.expires_at,
                        "updated_at": new.updated_at,
                    },
                    where=entries.c.updated_at <= new.updated_at,
                )
            )
        if epoch is not None:
            lease = target.insert(leases).values(
                prefix=prefix,
                owner_id=MOVED_BY,
                owner_addr="",
                owner_token=MOVED_BY,
                epoch=epoch,
                expires_at=0.0,
                acquired_at=now,
            )
            # Never lower: the next owner takes epoch + 1, above any token issued before.
            higher = case((leases.c.epoch > lease.excluded.epoch, leases.c.epoch), else_=epoch)
            conn.execute(
                lease.on_conflict_do_update(
                    index_elements=[leases.c.prefix], set_={"epoch": higher, "expires_at": 0.0}
                )
            )
    with source.transaction() as conn:
        conn.execute(delete(entries).where(entries.c.prefix == prefix))
    return len(rows)


def rebalance(from_urls: Sequence[str], to_urls: Sequence[str], *, dry_run: bool = False) -> Report:
    """Move every prefix whose home changes from the `from_urls` list to the `to_urls` one."""
    ids: list[str] = []
    urls: list[str] = []
    for url in [*from_urls, *to_urls]:
        if shard_identity(url) not in ids:
            ids.append(shard_identity(url))
            urls.append(url)
    to_ids = [shard_identity(u) for u in to_urls]
    if len(set(to_ids)) != len(to_ids):
        raise RebalanceError("--to lists the same database twice")
    dbs = [CacheDb(url, pool_size=1) for url in urls]
    try:
        for db in dbs:
            db.create_schema()
        refuse_live_members(dbs)
        moves = plan(dbs, ids, to_ids)
        rows = 0
        for m in moves:
            if dry_run:
                log.info(
                    "would move %r: %s -> %s",
                    m.prefix,
                    dbs[m.source].link.name,
                    dbs[m.target].link.name,
                )
                continue
            moved = move(m.prefix, dbs[m.source], dbs[m.target])
            rows += moved
            log.info(
                "moved %r (%d rows): %s -> %s",
                m.prefix,
                moved,
                dbs[m.source].link.name,
                dbs[m.target].link.name,
            )
        return Report(len(moves), rows)
    finally:
        for db in dbs:
            db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; the exit code (0 done, 1 refused or failed, 2 bad arguments)."""
    parser = argparse.ArgumentParser(
        prog="python -m services.cache.rebalance",
        description="Move cache prefixes between shard databases after CACHE_DB_URLS changes "
        "(every cache stopped).",
    )
    parser.add_argument("--from", dest="source", required=True, help="the old CACHE_DB_URLS")
    parser.add_argument("--to", dest="target", required=True, help="the new CACHE_DB_URLS")
    parser.add_argument("--dry-run", action="store_true", help="list the moves, change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = rebalance(
            parse_urls("--from", args.source),
            parse_urls("--to", args.target),
            dry_run=args.dry_run,
        )
    except (ConfigError, RebalanceError) as exc:
        print(f"rebalance refused: {exc}", file=sys.stderr)
        return 1
    verb = "would move" if args.dry_run else "moved"
    print(f"rebalance done: {verb} {report.prefixes} prefixes ({report.rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
