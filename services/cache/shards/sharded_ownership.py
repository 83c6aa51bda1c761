"""The ownership of a sharded node: a prefix's owner is the holder of its lease in its
home shard; members are the union of every shard's."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.owners import MemberInfo, OwnerInfo
from services.cache.shards.homes import Homes


class ShardedOwnership:
    """A node's ownership over one LeaseOwnership per shard (a `NodeOwnership`)."""

    def __init__(self, shards: Sequence[LeaseOwnership], homes: Homes) -> None:
        self._shards = list(shards)
        self._homes = homes

    def home(self, prefix: str) -> LeaseOwnership:
        """The leases of `prefix`'s home shard: every question on `prefix` goes there."""
        return self._shards[self._homes.index(prefix)]

    def route(self, prefix: str) -> OwnerInfo | None:
        """As LeaseOwnership.route, in `prefix`'s home shard."""
        return self.home(prefix).route(prefix)

    def owner_of(self, prefix: str) -> OwnerInfo:
        """As LeaseOwnership.owner_of, in `prefix`'s home shard."""
        return self.home(prefix).owner_of(prefix)

    async def admit(self, prefix: str) -> int:
        """As LeaseOwnership.admit, in `prefix`'s home shard."""
        return await self.home(prefix).admit(prefix)

    def current_epoch(self, prefix: str) -> int | None:
        """As LeaseOwnership.current_epoch, in `prefix`'s home shard."""
        return self.home(prefix).current_epoch(prefix)

    def valid_for(self, prefix: str) -> float:
        """As LeaseOwnership.valid_for, in `prefix`'s home shard."""
        return self.home(prefix).valid_for(prefix)

    def members(self) -> list[MemberInfo]:
        """Every node any shard knows (alive if alive in any)."""
        return merge_members(self._shards)

    def owners(self) -> list[OwnerInfo]:
        """The leases every shard knows (a prefix's lease lives in one shard only)."""
        found = [o for shard in self._shards for o in shard.owners()]
        return sorted(found, key=lambda o: o.prefix)

    def held(self) -> int:
        """How many prefixes this node holds a lease on, over every shard."""
        return sum(len(shard.held_prefixes()) for shard in self._shards)


def merge_members(shards: Sequence[LeaseOwnership]) -> list[MemberInfo]:
    """Members by node id over the shards: the newest heartbeat, alive if alive anywhere."""
    merged: dict[str, MemberInfo] = {}
    for shard in shards:
        for m in shard.members():
            seen = merged.get(m.node_id)
            if seen is None:
                merged[m.node_id] = m
            else:
                newest = m if m.heartbeat_at > seen.heartbeat_at else seen
                merged[m.node_id] = dataclasses.replace(newest, alive=seen.alive or m.alive)
    return [merged[node] for node in sorted(merged)]
