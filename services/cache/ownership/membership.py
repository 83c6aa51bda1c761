"""Who is alive and who should own what: rendezvous hashing over the live members."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.cache.ownership.lease_db import LeaseRow, MemberRow
from services.cache.ownership.owners import MemberInfo, OwnerInfo


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

    def twin(
        self, node_id: str, token: str, since: float, monotonic_now: float
    ) -> MemberRow | None:
        """Another live incarnation with `node_id` that heartbeat after `since`, if any."""
        for m in self.alive(monotonic_now):
            if m.node_id == node_id and m.token != token and m.heartbeat_at > since:
                return m
        return None

    def holder(self, prefix: str, monotonic_now: float) -> LeaseRow | None:
        """The lease of `prefix` if someone holds it now (unexpired, not exited)."""
        lease = self.leases.get(prefix)
        if lease is None or lease.owner_token in self.exited:
            return None
        return lease if lease.expires_at > self.db_time(monotonic_now) else None

    def is_free(self, prefix: str, monotonic_now: float) -> bool:
        """Whether nobody holds `prefix` now."""
        return self.holder(prefix, monotonic_now) is None

    def holder_info(self, prefix: str, monotonic_now: float, me: str | None) -> OwnerInfo | None:
        """The holder of `prefix` now, unless it is the incarnation with token `me`."""
        lease = self.holder(prefix, monotonic_now)
        if lease is None or lease.owner_token == me:
            return None
        return OwnerInfo(prefix, lease.owner_id, lease.owner_addr, lease.epoch, lease.expires_at)

    def candidate(
        self, prefix: str, node_ids: Iterable[str], monotonic_now: float
    ) -> OwnerInfo | None:
        """The live member among `node_ids` that should take `prefix` (epoch 0: not yet)."""
        target = preferred(prefix, node_ids)
        for member in self.alive(monotonic_now):
            if member.node_id == target:
                return OwnerInfo(prefix, member.node_id, member.address, 0, 0.0)
        return None

    def member_infos(self, monotonic_now: float) -> list[MemberInfo]:
        """Every member (the newest incarnation of each node id), alive or recently dead."""
        alive = {m.token for m in self.alive(monotonic_now)}
        newest: dict[str, MemberInfo] = {}
        for m in sorted(self.members, key=lambda m: m.heartbeat_at):
            newest[m.node_id] = MemberInfo(m.node_id, m.address, m.heartbeat_at, m.token in alive)
        return [newest[node] for node in sorted(newest)]
