"""Who owns each prefix: the callbacks an owner makes into the store (`Owned`), the
read-only view the router and inspection ask (`OwnershipView`), the redirect errors, and
the single-node owner used when one store is alone on its database (tests, embedding).
What the store asks of an owner is declared by the store (`store.Ownership`). The
multi-process owner, with leases, is `leases.LeaseOwnership`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from marketcache.v1 import cache_pb2
from services.cache.clock import Clock
from services.cache.errors import CacheError, Failure

ALL_PREFIXES = "*"


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """The holder of a prefix's lease (epoch 0: nobody yet; this node would take it)."""

    prefix: str
    node_id: str
    address: str
    epoch: int
    # Lease expiry, Unix seconds on the database's clock.
    expires_at: float


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A live (or recently live) cache node."""

    node_id: str
    address: str
    heartbeat_at: float
    alive: bool


class NotOwner(CacheError):  # noqa: N818 (a redirect rather than a failure)
    """This node may not serve the prefix now. UNAVAILABLE: nothing was done, so any
    call may be retried, at `owner` (named in an OwnerRedirect detail) when known."""

    def __init__(self, prefix: str, owner: OwnerInfo | None, why: str) -> None:
        if owner is not None and owner.address:
            where = f"; its owner is {owner.node_id} at {owner.address}: retry there"
            details = [
                cache_pb2.OwnerRedirect(
                    prefix=prefix,
                    node_id=owner.node_id,
                    address=owner.address,
                    epoch=owner.epoch,
                )
            ]
        else:
            where, details = "; no live owner is known yet: retry shortly", []
        super().__init__(Failure.UNAVAILABLE, f"prefix {prefix!r}: {why}{where}", details)
        self.prefix = prefix
        self.owner = owner


class Fenced(NotOwner):
    """A write refused at commit: its lease epoch was no longer current. Nothing was
    written. Not forwarded by the node (the call crossed an ownership change; the
    client decides), but safe to retry at the owner named."""


class Owned(Protocol):
    """What an owner needs from the store whose prefixes it leases."""

    @property
    def writer(self) -> Executor:
        """The writer thread: lease transactions never interleave with a commit."""
        ...

    def acquired(self, prefix: str, epoch: int) -> None:
        """`prefix` is ours from now, at `epoch`: forget anything remembered of it."""
        ...

    def lost(self, prefix: str) -> None:
        """`prefix` is no longer ours: forget it."""
        ...

    async def hand_over(self, prefix: str) -> None:
        """Stop taking ops for `prefix`, let its commits land, then `release` it."""
        ...


class OwnershipView(Protocol):
    """Who owns what, read-only: what the router and the inspection RPCs ask."""

    def route(self, prefix: str) -> OwnerInfo | None:
        """Where to serve `prefix`: None for here, else the owner to forward to."""
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


class NodeOwnership(OwnershipView, Protocol):
    """A node's whole ownership: the view, and its own leases (what Watch and the
    positions of the near cache ask). One database's leases, or every shard's."""

    async def admit(self, prefix: str) -> int:
        """The epoch under which this node serves `prefix` now (NotOwner if it does not)."""
        ...

    def current_epoch(self, prefix: str) -> int | None:
        """The epoch of our lease on `prefix`, None when we hold none."""
        ...

    def valid_for(self, prefix: str) -> float:
        """Seconds our lease on `prefix` stays locally valid."""
        ...


class SingleNodeOwnership:
    """This node owns every prefix at epoch 1: the store is alone on its database."""

    EPOCH = 1
    exclusive = True
    token: str | None = None

    def __init__(
        self, node_id: str, address: Callable[[], str], clock: Clock, lease_seconds: float
    ) -> None:
        self.node_id = node_id
        self._address = address
        self._clock = clock
        self._lease_seconds = lease_seconds

    async def start(self, owned: Owned) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def admit(self, prefix: str) -> int:
        return self.EPOCH

    def current_epoch(self, prefix: str) -> int | None:
        return self.EPOCH

    def valid_for(self, prefix: str) -> float:
        # Alone on its database, the node's lease never lapses.
        return self._lease_seconds

    def route(self, prefix: str) -> OwnerInfo | None:
        return None

    def refusal(self, prefix: str, epoch: int) -> CacheError:
        return Fenced(prefix, None, "the write was refused")

    async def release(self, prefix: str) -> bool:
        return False

    def problem(self) -> str | None:
        return None

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
