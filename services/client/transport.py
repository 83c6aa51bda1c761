"""The client's one way to the cache nodes: channels, the route table, redirects, retries.

The route table maps a prefix to its owner's address. It is learned from replies
that another node forwarded (their OWNER_HEADER trailing metadata) and from
OwnerRedirect details of errors; an entry is dropped when its owner fails.
Unknown prefixes go to the configured address, which forwards to the owner: one
hop more, once. Nothing outside this module reads or edits the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client.errors import CacheError, CacheUnavailable, error_from
from services.common.channel_pool import ChannelPool
from services.common.errors import status_details
from services.common.partition import run_parts, split
from services.common.tls import TlsConfig
from services.common.wire import OWNER_HEADER

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub

# Attempts per call: the first, then after a redirect or a dead owner.
_ATTEMPTS = 3
# What a directly called owner's failure says: it is gone (UNAVAILABLE) or silent.
_OWNER_FAILED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
Metadata = Sequence[tuple[str, str]] | None


class Transport:
    """Calls each prefix's owner directly once known, `address` otherwise, within `timeout`."""

    def __init__(self, address: str, *, timeout: float, tls: TlsConfig | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self._pool: ChannelPool[Stub] = ChannelPool(cache_pb2_grpc.CacheServiceStub, tls)
        # prefix -> address of its owner, as last learned.
        self._routes: dict[str, str] = {}

    # -- the route table ---------------------------------------------------------

    def route(self, key_or_prefix: str) -> str:
        """The address to call for a key (or prefix): its owner if known, else `address`."""
        routes = self._routes
        if routes:
            # The server's prefix depth is its own business: try each leading part.
            at = key_or_prefix.find(":")
            while at > 0:
                owner = routes.get(key_or_prefix[:at])
                if owner is not None:
                    return owner
                at = key_or_prefix.find(":", at + 1)
            return routes.get(key_or_prefix, self.address)
        return self.address

    def routes(self) -> dict[str, str]:
        """A copy of the route table, prefix -> owner address (inspection)."""
        return dict(self._routes)

    def learn(self, prefix: str, owner: str) -> None:
        """`owner` serves `prefix` ("": nobody known, go through `address`)."""
        if owner:
            self._routes[prefix] = owner
        else:
            self._routes.pop(prefix, None)

    # -- calls ---------------------------------------------------------------------

    def stub(self, address: str) -> Stub:
        """The stub of the node at `address` (for streams, which are not retried here)."""
        return self._pool.stub(address)

    async def call(
        self,
        method: str,
        request: Any,
        metadata: Metadata = None,
        *,
        route: str | None = None,
        write: bool = False,
    ) -> Any:
        """One unary call within `timeout`, at the owner of `route` (a key or prefix),
        following an owner redirect and, when safe, retrying at `address` after a
        dead owner. Failures raise CacheError (CacheUnavailable: no answer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        address = self.address if route is None else self.route(route)
        for attempt in range(_ATTEMPTS):
            call = getattr(self._pool.stub(address), method)(
                request, timeout=max(0.001, deadline - loop.time()), metadata=metadata
            )
            try:
                reply = await call
            except grpc.aio.AioRpcError as exc:
                retry = self._retry_at(exc, address, write)
                if retry is None or attempt == _ATTEMPTS - 1 or loop.time() >= deadline:
                    raise error_from(exc) from None
                address = retry
                continue
            self._learn_from(await call.trailing_metadata())
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_by_owner(
        self,
        keys: Sequence[str],
        method: str,
        request_for: Callable[[list[int]], Any],
        *,
        write: bool,
    ) -> list[tuple[list[int], Any]]:
        """A batch in one call per owner, run together; (indexes, reply) per part.

        A part the server rejects (a bad key, say) sends the whole batch once more
        in one call, so the error names the item by its index in the caller's batch.
        """
        groups = split(self.route(key) for key in keys)
        if len(groups) > 1:
            parts = list(groups.values())
            try:
                replies = await run_parts(
                    self.call(method, request_for(ix), route=keys[ix[0]], write=write)
                    for ix in parts
                )
                return list(zip(parts, replies, strict=True))
            except CacheUnavailable:
                raise
            except CacheError:
                route = None  # the whole batch, through `address`
        else:
            route = keys[0] if keys else None
        indexes = list(range(len(keys)))
        return [(indexes, await self.call(method, request_for(indexes), route=route, write=write))]

    async def close(self) -> None:
        """Close the channels; the transport may be used again (they reopen)."""
        await self._pool.close()

    # -- inside --------------------------------------------------------------------

    def _learn_from(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        for key, value in metadata or ():
            if key == OWNER_HEADER and isinstance(value, str):
                prefix, _, owner = value.partition("=")
                if prefix and owner:
                    self._routes[prefix] = owner

    def _retry_at(self, exc: grpc.aio.AioRpcError, address: str, write: bool) -> str | None:
        """Where to try again after `exc` from `address`, or None: do not."""
        redirect = _redirect_of(exc)
        if redirect is not None:
            # The node did nothing (it does not own the prefix, or its lease ended
            # before the commit): any call is safe to send again, to the owner named.
            self.learn(redirect.prefix, redirect.address)
            return redirect.address if redirect.address not in ("", address) else None
        code = exc.code()
        if address == self.address or code not in _OWNER_FAILED:
            return None
        # An owner we called directly is gone, or silent (paused, or cut off behind a
        # link that still accepts): forget it, so that calls go through `address`, which
        # forwards them to whoever owns the prefix now. Kept after a silence, the route
        # would send every later call to the silent node until it answered again.
        self._routes = {p: a for p, a in self._routes.items() if a != address}
        # A write is sent again only when it never left (no connection): one that may
        # have reached the dead owner has an unknown outcome, for the caller to judge.
        # After a silence the deadline is spent: nothing is sent again.
        if code is not grpc.StatusCode.UNAVAILABLE or (write and not never_sent(exc)):
            return None
        return self.address


def _redirect_of(exc: grpc.aio.AioRpcError) -> cache_pb2.OwnerRedirect | None:
    for detail in status_details(exc):
        redirect = cache_pb2.OwnerRedirect()
        if detail.Unpack(redirect):
            return redirect
    return None


def never_sent(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the call failed because no connection to the server could be made.

    Only then is a write known not to have been applied, and safe to send again.
    grpcio offers no structured signal for it: a connection refused and a connection
    lost mid-call are both UNAVAILABLE with no metadata, told apart only by grpc
    core's message ("failed to connect to all addresses; last error: ...").
    tests/client/test_never_sent.py provokes both against real sockets, so a grpcio
    that words it differently fails there, not silently here. (A server that did
    nothing says so itself, with an OwnerRedirect detail: see Transport._retry_at.)
    """
    return (
        exc.code() is grpc.StatusCode.UNAVAILABLE
        and "failed to connect" in (exc.details() or "").lower()
    )
