"""Who is alive and who should own what: rendezvous hashing over the live members."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.cache.lease_db import LeaseRow, MemberRow


def weight(node_id: str, prefix: str) -> int:
    """The rendezvous (highest-random-weight) score of `node_id` for `prefix`."""
    digest = hashlib.blake2b(f"{node_id}\0{prefix}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def preferred(prefix: str, node_ids: Iterable[str]) -> str | None:
    """The node that should own `prefix`: the highest score (ties broken by id).

    When a node joins or leaves, only the prefixes it wins or held change hands.
    """
    return max(node_ids, key=lambda node: (weight(node, prefix), node), default=None)


@dataclass(frozen=True)
class View:
    """The member and lease tables as one heartbeat read them."""

    # This process's monotonic clock when the heartbeat began, and the database's
    # clock during it: together they estimate the database's clock later on.
    started: float
    db_now: float
    members: list[MemberRow] = field(default_factory=list)
    leases: dict[str, LeaseRow] = field(default_factory=dict)
    # Tokens of incarnations proven to have exited (same host, pid gone).
    exited: frozenset[str] = frozenset()

    def db_time(self, monotonic_now: float) -> float:
        """The database's clock now, estimated."""
        return self.db_now + (monotonic_now - self.started)

    def alive(self, monotonic_now: float) -> list[MemberRow]:
        """Members whose heartbeat has not expired and who have not provably exited;
        the newest incarnation of each node id."""
        now = self.db_time(monotonic_now)
        newest: dict[str, MemberRow] = {}
        for m in self.members:
            if m.expires_at <= now or m.token in self.exited:
                continue
            if m.node_id not in newest or m.heartbeat_at > newest[m.node_id].heartbeat_at:
                newest[m.node_id] = m
        return sorted(newest.values(), key=lambda m: m.node_id)

    def holder(self, prefix: str, monotonic_now: float) -> LeaseRow | None:
        """The lease of `prefix` if someone holds it now (unexpired, not exited)."""
        lease = self.leases.get(prefix)
        if lease is None or lease.owner_token in self.exited:
            return None
        return lease if lease.expires_at > self.db_time(monotonic_now) else None

    def is_free(self, prefix: str, monotonic_now: float) -> bool:
        """Whether nobody holds `prefix` now."""
        return self.holder(prefix, monotonic_now) is None
