"""Auto-batching for CacheClient: concurrent calls to one owner share one RPC.

Like ioredis's enableAutoPipelining and DataLoader: a call joins the pending
batch of its owner's address, and the batch leaves at the end of the current
event-loop tick, so a lone caller waits for nothing. Gets become one MGet (a
single Get stays a unary Get); sets and deletes become one WriteBatch, whose
status per item gives each caller exactly its own outcome. Writes to one
address keep one batch in flight, the next accumulating meanwhile: ops on one
key are applied in the order the callers made them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2
from services.client.direct import Direct
from services.client.errors import CacheError, failure, status_code
from services.client.kv import Hit, hit_of
from services.client.transport import Transport

# The server's CACHE_MAX_BATCH default, and a margin under the 4 MiB message limit.
MAX_BATCH = 1000
MAX_BATCH_BYTES = 3 * 1024 * 1024
# Read RPCs in flight per address; the rest wait their turn (within their deadline).
MAX_READS_IN_FLIGHT = 16

Item = tuple[Any, "asyncio.Future[Any]"]


class Batched(Direct):
    """Direct, except that get, set and delete join their owner's pending batch."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self._batcher = Batcher(transport)

    async def get(self, key: str) -> Hit | None:
        """The entry of `key`, read in its owner's next MGet (alone: a Get)."""
        return hit_of(await self._batcher.get(key))

    async def set(self, key: str, value: struct_pb2.Value, ttl: int) -> cache_pb2.Position:
        """Store `value`, in its owner's next WriteBatch (alone: a Set)."""
        op = cache_pb2.WriteOp(key=key, set=cache_pb2.SetOp(value=value, ttl_seconds=ttl))
        result = await self._batcher.write(op)
        position: cache_pb2.Position = result.position
        return position

    async def delete(self, key: str) -> tuple[bool, cache_pb2.Position]:
        """Remove `key`, in its owner's next WriteBatch (alone: a Delete)."""
        result = await self._batcher.write(cache_pb2.WriteOp(key=key, delete=cache_pb2.DeleteOp()))
        return bool(result.deleted), result.position


@dataclass
class _Queue:
    pending: list[Item] = field(default_factory=list)
    scheduled: bool = False
    busy: bool = False


class Batcher:
    """Per-address queues of gets and writes, flushed once per loop tick."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._reads: dict[str, _Queue] = {}
        self._writes: dict[str, _Queue] = {}
        self._read_slots: dict[str, asyncio.Semaphore] = {}

    async def get(self, key: str) -> Any:
        """The GetResponse or MGetResult of `key` (found, value, ttl, position)."""
        return await self._within_deadline(self._join(self._reads, key, key, self._send_reads))

    async def write(self, op: cache_pb2.WriteOp) -> Any:
        """The SetResponse/DeleteResponse or WriteResult of `op`, once durable."""
        return await self._within_deadline(self._join(self._writes, op.key, op, self._send_writes))

    async def _within_deadline(self, joined: asyncio.Future[Any]) -> Any:
        """The caller's outcome within the client's timeout (and a little grace), counted
        from its call: time queued behind a batch in flight to the same owner counts
        too (a call queued behind one to a silent owner took twice the timeout)."""
        timeout = self._transport.timeout
        try:
            # A call sent at once meets its own RPC deadline first (the transport then
            # forgets a silent owner's route): the grace leaves it that moment.
            async with asyncio.timeout(timeout + min(1.0, max(0.25, timeout / 4))):
                return await joined
        except TimeoutError:
            raise failure(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no answer within {timeout:g}s (the call waited its turn behind another "
                "to the same owner); a write may or may not have been applied",
            ) from None

    def _join(
        self,
        queues: dict[str, _Queue],
        key: str,
        item: Any,
        send: Callable[[str, list[Item]], Awaitable[None]],
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        address = self._transport.route(key)
        queue = queues.get(address)
        if queue is None:
            queue = queues[address] = _Queue()
        future: asyncio.Future[Any] = loop.create_future()
        queue.pending.append((item, future))
        if not queue.scheduled and not queue.busy:
            queue.scheduled = True
            loop.call_soon(self._flush, queues, address, send)
        return future

    def _flush(
        self,
        queues: dict[str, _Queue],
        address: str,
        send: Callable[[str, list[Item]], Awaitable[None]],
    ) -> None:
        queue = queues[address]
        queue.scheduled = False
        # A caller gone past its deadline (its future cancelled) is not sent at all.
        items, queue.pending = [i for i in queue.pending if not i[1].done()], []
        if not items:
            return
        if queues is self._writes:
            queue.busy = True  # one write batch in flight per address: order kept
        task = asyncio.ensure_future(send(address, items))

        def done(finished: asyncio.Task[None]) -> None:
            # Every caller's future ends, even when the batch broke (a reply that
            # does not match its request): none may wait past its deadline.
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                broken = failure(grpc.StatusCode.INTERNAL, f"batched call failed: {exc!r}")
                _fail_all(items, broken)
            if queue.busy:
                queue.busy = False
                if queue.pending and not queue.scheduled:
                    queue.scheduled = True
                    asyncio.get_running_loop().call_soon(self._flush, queues, address, send)

        task.add_done_callback(done)

    async def _send_reads(self, address: str, items: list[Item]) -> None:
        slots = self._read_slots.get(address)
        if slots is None:
            slots = self._read_slots[address] = asyncio.Semaphore(MAX_READS_IN_FLIGHT)
        chunks = [items[i : i + MAX_BATCH] for i in range(0, len(items), MAX_BATCH)]

        async def one(chunk: list[Item]) -> None:
            async with slots:
                await self._read_chunk(chunk)

        await asyncio.gather(*(one(chunk) for chunk in chunks))

    async def _read_chunk(self, chunk: list[Item]) -> None:
        keys = [key for key, _ in chunk]
        if len(chunk) == 1:
            await _settle(chunk[0][1], self._transport.call("Get", _get(keys[0]), route=keys[0]))
            return
        try:
            reply = await self._transport.call(
                "MGet", cache_pb2.MGetRequest(keys=keys), route=keys[0]
            )
        except Exception as exc:
            if isinstance(exc, CacheError) and exc.code is grpc.StatusCode.INVALID_ARGUMENT:
                # MGet fails whole on one bad key: each caller asks alone, so the
                # bad key fails only its own caller.
                await asyncio.gather(
                    *(
                        _settle(f, self._transport.call("Get", _get(key), route=key))
                        for key, f in chunk
                    )
                )
                return
            _fail_all(chunk, exc)
            return
        for (_, future), result in zip(chunk, reply.results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _send_writes(self, address: str, items: list[Item]) -> None:
        # Chunks go one after another: a key in two chunks keeps its order.
        chunk: list[Item] = []
        size = 0
        for item in items:
            op_size = item[0].ByteSize() + 8
            if chunk and (len(chunk) >= MAX_BATCH or size + op_size > MAX_BATCH_BYTES):
                await self._write_chunk(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += op_size
        if chunk:
            await self._write_chunk(chunk)

    async def _write_chunk(self, chunk: list[Item]) -> None:
        if len(chunk) == 1:
            op, future = chunk[0]
            await _settle(future, self._alone(op))
            return
        ops = [op for op, _ in chunk]
        try:
            reply = await self._transport.call(
                "WriteBatch", cache_pb2.WriteBatchRequest(ops=ops), route=ops[0].key, write=True
            )
        except Exception as exc:
            _fail_all(chunk, exc)
            return
        again: list[Awaitable[None]] = []
        for (op, future), result in zip(chunk, reply.results, strict=True):
            if future.done():
                continue
            if result.code == 0:
                future.set_result(result)
            elif result.HasField("redirect") and result.redirect.address:
                # The node did nothing with it: the item goes alone to its owner.
                self._transport.learn(result.redirect.prefix, result.redirect.address)
                again.append(_settle(future, self._alone(op)))
            else:
                future.set_exception(failure(status_code(result.code), result.message))
        if again:
            await asyncio.gather(*again)

    def _alone(self, op: cache_pb2.WriteOp) -> Awaitable[Any]:
        """One op as its own unary call (exactly what it would have been unbatched)."""
        if op.HasField("set"):
            request: Any = cache_pb2.SetRequest(
                key=op.key, value=op.set.value, ttl_seconds=op.set.ttl_seconds
            )
            return self._transport.call("Set", request, route=op.key, write=True)
        return self._transport.call(
            "Delete", cache_pb2.DeleteRequest(key=op.key), route=op.key, write=True
        )


def _get(key: str) -> cache_pb2.GetRequest:
    return cache_pb2.GetRequest(key=key)


async def _settle(future: asyncio.Future[Any], call: Awaitable[Any]) -> None:
    try:
        result = await call
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(result)


def _fail_all(chunk: list[Item], exc: BaseException) -> None:
    for _, future in chunk:
        if not future.done():
            future.set_exception(exc)
