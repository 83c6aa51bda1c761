"""Serving a request where its prefix lives: here, or forwarded one hop to the owner.

A forwarded call carries FORWARDED_BY, and a node never forwards such a call
again: during a handover two nodes may each believe the other owns a prefix,
and without the mark they would bounce the call between them. The node answers
NotOwner instead, and the client retries at the owner it names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from marketcache.v1 import cache_pb2_grpc
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.owners import Fenced, NotOwner, OwnerInfo, OwnershipView
from services.common.channel_pool import ChannelPool
from services.common.errors import ServiceError, status_details
from services.common.partition import run_parts, split
from services.common.tls import TlsConfig
from services.common.wire import FORWARDED_BY, OWNER_HEADER

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R")

# A forwarded call without a deadline of its own gets this one (seconds).
FORWARD_TIMEOUT = 10.0
# A forward gives up this share of the caller's remaining time early (at most
# FORWARD_MARGIN seconds), so that a silent owner is answered UNAVAILABLE before
# the caller's own deadline passes, not left to it as DEADLINE_EXCEEDED.
FORWARD_SHARE = 0.2
FORWARD_MARGIN = 0.25
# Metadata a forwarded call carries on (admin calls need their token at the owner).
_PASSED_ON = frozenset({"authorization"})


class ForwardedError(ServiceError):
    """The owner's error, passed back with its code and details (an OwnerRedirect too)."""

    def __init__(self, error: grpc.aio.AioRpcError, owner: OwnerInfo) -> None:
        super().__init__(
            error.code(), f"forwarded to {owner.node_id} at {owner.address}: {error.details()}"
        )
        self._raw_details = status_details(error)

    def to_status(self) -> grpc.Status:
        status = status_pb2.Status(
            code=self.code.value[0], message=self.message, details=self._raw_details
        )
        return rpc_status.to_status(status)


class Peers(ChannelPool["cache_pb2_grpc.CacheServiceAsyncStub"]):
    """One channel per peer node, opened on first use."""

    def __init__(self, tls: TlsConfig | None = None) -> None:
        super().__init__(cache_pb2_grpc.CacheServiceStub, tls)


def is_forwarded(context: Context) -> bool:
    """Whether another cache node forwarded this call to us."""
    return any(key == FORWARDED_BY for key, _ in context.invocation_metadata() or ())


class Router:
    """Splits a call's items by the node serving their prefix, runs each part, merges."""

    def __init__(
        self,
        ownership: OwnershipView,
        peers: Peers,
        metrics: OwnershipMetrics,
        *,
        node_id: str,
        address: Callable[[], str],
    ) -> None:
        self._ownership = ownership
        self._peers = peers
        self._metrics = metrics
        self._node_id = node_id
        self._address = address

    async def one(
        self,
        context: Context,
        method: str,
        prefix: str,
        request: Any,
        local: Callable[[], Awaitable[R]],
    ) -> R:
        """A call on one prefix: served here, or forwarded whole to the owner."""
        forwarded = is_forwarded(context)
        owner = self._ownership.route(prefix)
        if owner is None:
            try:
                return await local()
            except NotOwner as exc:
                owner = self._hop_after(exc, forwarded)
        else:
            self._may_forward(prefix, owner, forwarded)
        reply = await self._forward(method, request, context, owner)
        # Clients learn where to go directly next time (OWNER_HEADER).
        context.set_trailing_metadata(((OWNER_HEADER, f"{prefix}={owner.address}"),))
        return cast("R", reply)

    async def fan_out(
        self,
        context: Context,
        method: str,
        prefixes: Sequence[str],
        *,
        local: Callable[[list[int]], Awaitable[R]],
        request_for: Callable[[list[int]], Any],
        from_reply: Callable[[Any], R],
    ) -> list[tuple[list[int], R]]:
        """Run the items (their `prefixes`) in parts, one per prefix here and one per
        remote owner; returns each part's item indexes and result. Fails with the
        first part that fails (the others still complete: atomic per prefix only)."""
        forwarded = is_forwarded(context)
        learned: list[tuple[str, str]] = []

        async def remote(owner: OwnerInfo, indexes: list[int], owned: list[str]) -> R:
            reply = await self._forward(method, request_for(indexes), context, owner)
            learned.extend((prefix, owner.address) for prefix in owned)
            return from_reply(reply)

        async def here(prefix: str, indexes: list[int]) -> tuple[list[int], R]:
            try:
                return indexes, await local(indexes)
            except NotOwner as exc:
                return indexes, await remote(self._hop_after(exc, forwarded), indexes, [prefix])

        async def there(
            owner: OwnerInfo, group: list[tuple[str, list[int]]]
        ) -> tuple[list[int], R]:
            indexes = sorted(i for _, idx in group for i in idx)
            return indexes, await remote(owner, indexes, [prefix for prefix, _ in group])

        jobs: list[Awaitable[tuple[list[int], R]]] = []
        remote_groups: dict[str, tuple[OwnerInfo, list[tuple[str, list[int]]]]] = {}
        for prefix, indexes in split(prefixes).items():
            owner = self._ownership.route(prefix)
            if owner is None:
                jobs.append(here(prefix, indexes))
            else:
                self._may_forward(prefix, owner, forwarded)
                remote_groups.setdefault(owner.address, (owner, []))[1].append((prefix, indexes))
        jobs.extend(there(owner, group) for owner, group in remote_groups.values())
        parts = await run_parts(jobs)
        if learned:
            # Clients learn where to go directly next time (OWNER_HEADER).
            context.set_trailing_metadata(
                tuple((OWNER_HEADER, f"{prefix}={address}") for prefix, address in learned)
            )
        return parts

    def _elsewhere(self, owner: OwnerInfo | None) -> bool:
        return owner is not None and owner.address not in ("", self._address())

    def _may_forward(self, prefix: str, owner: OwnerInfo, forwarded: bool) -> None:
        """Raise NotOwner (naming `owner`) unless a call on `prefix` may go to `owner`."""
        if forwarded or not self._elsewhere(owner):
            raise NotOwner(prefix, owner if owner.address else None, "this node does not own it")

    def _hop_after(self, exc: NotOwner, forwarded: bool) -> OwnerInfo:
        """Serving here found the lease moved (our view was stale): the owner it names,
        for one hop. Not after a write fenced at commit: that write crossed the move,
        and the client decides. Re-raises `exc` when there is no hop to make."""
        if forwarded or isinstance(exc, Fenced) or not self._elsewhere(exc.owner):
            raise exc
        assert exc.owner is not None
        return exc.owner

    def owner_elsewhere(self, context: Context, prefix: str) -> OwnerInfo | None:
        """Where a streaming call on `prefix` is served: None for here, else the owner
        to forward it to (NotOwner when it may not be forwarded)."""
        owner = self._ownership.route(prefix)
        if owner is not None:
            self._may_forward(prefix, owner, is_forwarded(context))
        return owner

    async def forward_stream(
        self, method: str, request: Any, context: Context, owner: OwnerInfo
    ) -> AsyncIterator[Any]:
        """A server-streaming call passed whole to `owner`, its messages relayed."""
        self._metrics.forwarded.labels(method).inc()
        call = getattr(self._peers.stub(owner.address), method)(
            request, metadata=self._passed_on(context), timeout=context.time_remaining()
        )
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as exc:
            raise ForwardedError(exc, owner) from None

    def _passed_on(self, context: Context) -> list[tuple[str, str]]:
        """The metadata a forwarded call carries: our mark, and the caller's token."""
        return [(FORWARDED_BY, self._node_id)] + [
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if key in _PASSED_ON and isinstance(value, str)
        ]

    async def _forward(self, method: str, request: Any, context: Context, owner: OwnerInfo) -> Any:
        self._metrics.forwarded.labels(method).inc()
        metadata = self._passed_on(context)
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            # The caller gave up: a late forward would only act behind its back.
            raise ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed")
        if remaining is None:
            timeout = FORWARD_TIMEOUT
        else:
            timeout = remaining - min(FORWARD_MARGIN, remaining * FORWARD_SHARE)
        call = getattr(self._peers.stub(owner.address), method)
        try:
            return await call(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                # The owner is slow or cut off from us (a silent link answers nothing).
                raise ServiceError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"forwarded to {owner.node_id} at {owner.address}: no answer within "
                    f"{timeout:.2f}s (the owner is slow or unreachable from this node); a "
                    "write may or may not have been applied: read it back before retrying",
                ) from None
            raise ForwardedError(exc, owner) from None
