"""One channel per address, opened on first use: the cache client's and the cache nodes' peers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

import grpc

from services.common.channels import open_channel
from services.common.tls import TlsConfig

S = TypeVar("S")


class ChannelPool(Generic[S]):
    """Stubs by address over one shared channel each; `close` empties the pool for reuse."""

    def __init__(self, make_stub: Callable[[grpc.aio.Channel], S], tls: TlsConfig | None) -> None:
        self._make_stub = make_stub
        self._tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, S] = {}

    def stub(self, address: str) -> S:
        """The stub of the server at `address`."""
        stub = self._stubs.get(address)
        if stub is None:
            # Lazily, so the channel binds to the event loop that uses it.
            channel = self._channels[address] = open_channel(address, self._tls)
            stub = self._stubs[address] = self._make_stub(channel)
        return stub

    async def close(self) -> None:
        """Close every channel; the next `stub` call opens a new one."""
        channels, self._channels, self._stubs = list(self._channels.values()), {}, {}
        await asyncio.gather(*(channel.close(None) for channel in channels))
