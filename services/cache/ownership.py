"""Who owns each prefix. For now one node owns every prefix at epoch 1; the store only
talks to the `Ownership` protocol, so leases across processes can replace it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.cache.clock import Clock

ALL_PREFIXES = "*"


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """The holder of a prefix's lease."""

    prefix: str
    node_id: str
    address: str
    epoch: int
    # Lease expiry, Unix seconds.
    expires_at: float


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A live (or recently live) cache node."""

    node_id: str
    address: str
    heartbeat_at: float
    alive: bool


class Ownership(Protocol):
    """What the store asks before it touches a prefix."""

    async def start(self) -> None:
        """Join the membership (called once the store is open)."""
        ...

    async def stop(self) -> None:
        """Give up every lease (called after the last write committed)."""
        ...

    async def admit(self, prefix: str) -> int:
        """The fencing epoch under which this node may serve `prefix` now.

        Raises ServiceError when another node owns it (with an OwnerRedirect
        detail naming that node) or when ownership is uncertain.
        """
        ...

    def owner_of(self, prefix: str) -> OwnerInfo:
        """The current owner of `prefix`, as far as this node knows."""
        ...

    def members(self) -> list[MemberInfo]:
        """The nodes this node knows about."""
        ...

    def owners(self) -> list[OwnerInfo]:
        """The leases this node knows about."""
        ...


class SingleNodeOwnership:
    """This node owns every prefix at epoch 1 (one cache process per database)."""

    EPOCH = 1

    def __init__(
        self, node_id: str, address: Callable[[], str], clock: Clock, lease_seconds: float
    ) -> None:
        self.node_id = node_id
        self._address = address
        self._clock = clock
        self._lease_seconds = lease_seconds

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def admit(self, prefix: str) -> int:
        return self.EPOCH

    def owner_of(self, prefix: str) -> OwnerInfo:
        # The lease is implicit and always renewed: report one lease period ahead.
        return OwnerInfo(
            prefix=prefix,
            node_id=self.node_id,
            address=self._address(),
            epoch=self.EPOCH,
            expires_at=self._clock.now() + self._lease_seconds,
        )

    def members(self) -> list[MemberInfo]:
        return [MemberInfo(self.node_id, self._address(), self._clock.now(), True)]

    def owners(self) -> list[OwnerInfo]:
        return [self.owner_of(ALL_PREFIXES)]
