"""WriteBatch: many sets and deletes in one call, each with its own outcome.

Unlike MSet (all-or-nothing validation, atomic per prefix), every op stands
alone: a bad key, TTL or value fails only its own item. The valid ops go
through the store's normal path per prefix (input gate, group commit), in
request order, so ops on one key apply in the order sent; each is reported OK
only once its commit is durable. A prefix owned elsewhere is forwarded there
(its part of the batch, as one WriteBatch), like MSet's parts.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2
from services.cache.ownership.owners import NotOwner
from services.cache.rpc.routing import Context, Router
from services.cache.store.admission import Admission, NewEntry
from services.cache.store.interface import Deletion, Store
from services.cache.watch.stream import position_of
from services.common.errors import ServiceError, invalid_argument
from services.common.partition import run_parts

# How a value becomes the stored blob, or why it cannot (the servicer's checks).
BlobOf = Callable[[struct_pb2.Value, bool, str], bytes]


async def write_batch(
    request: cache_pb2.WriteBatchRequest,
    context: Context,
    *,
    store: Store,
    router: Router,
    admission: Admission,
    blob_of: BlobOf,
) -> cache_pb2.WriteBatchResponse:
    """Validate each op alone, write the valid ones per prefix, answer one result per op."""
    ops = request.ops
    admission.batch(len(ops), "ops")
    reply = cache_pb2.WriteBatchResponse()
    results = [reply.results.add(key=op.key) for op in ops]
    prepared: list[NewEntry | Deletion | None] = []
    by_prefix: dict[str, list[int]] = {}
    for i, op in enumerate(ops):
        try:
            item = _prepare(op, i, admission, blob_of)
        except ServiceError as exc:
            _fail(results[i], exc)
            prepared.append(None)
            continue
        prepared.append(item)
        by_prefix.setdefault(item.prefix, []).append(i)

    async def part(prefix: str, indexes: list[int]) -> None:
        async def here() -> cache_pb2.WriteBatchResponse:
            items = [prepared[i] for i in indexes]
            outcomes = await store.write_mixed([item for item in items if item is not None])
            done = cache_pb2.WriteBatchResponse()
            for item, (outcome, at) in zip(items, outcomes, strict=True):
                assert item is not None
                # The commit's position: the writer's near cache refuses older reads.
                position = position_of(at)
                if isinstance(item, NewEntry):
                    done.results.add(key=item.key, ttl_seconds=item.ttl, position=position)
                else:
                    done.results.add(key=item.key, deleted=outcome.removed > 0, position=position)
            return done

        sub = cache_pb2.WriteBatchRequest(ops=[ops[i] for i in indexes])
        try:
            answered = await router.one(context, "WriteBatch", prefix, sub, here)
        except NotOwner as exc:
            for i in indexes:
                _fail(results[i], exc)
                if exc.owner is not None and exc.owner.address:
                    # Nothing was done: the client sends the item again, there.
                    results[i].redirect.CopyFrom(_redirect(exc))
            return
        except ServiceError as exc:
            for i in indexes:
                _fail(results[i], exc)
            return
        for i, result in zip(indexes, answered.results, strict=True):
            results[i].CopyFrom(result)

    await run_parts(part(prefix, indexes) for prefix, indexes in by_prefix.items())
    return reply


def _prepare(
    op: cache_pb2.WriteOp, i: int, admission: Admission, blob_of: BlobOf
) -> NewEntry | Deletion:
    kind = op.WhichOneof("op")
    if kind == "set":
        blob = blob_of(op.set.value, op.set.HasField("value"), f"ops[{i}].set.value")
        return admission.entry(op.key, blob, op.set.ttl_seconds, f"ops[{i}].")
    if kind == "delete":
        return Deletion(op.key, admission.keys.prefix_of(op.key, f"ops[{i}].key"))
    raise invalid_argument(
        f"ops[{i}] (key {op.key!r}) has neither set nor delete: set exactly one",
        f"ops[{i}]",
    )


def _fail(result: cache_pb2.WriteResult, error: ServiceError) -> None:
    result.code = error.code.value[0]
    result.message = error.message


def _redirect(exc: NotOwner) -> cache_pb2.OwnerRedirect:
    owner = exc.owner
    assert owner is not None
    return cache_pb2.OwnerRedirect(
        prefix=exc.prefix, node_id=owner.node_id, address=owner.address, epoch=owner.epoch
    )
