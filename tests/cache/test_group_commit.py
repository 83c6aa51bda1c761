"""Group commit: queued writes share a transaction; a failed one fails all its writers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import grpc
import pytest

from services.cache.errors import CacheError, Failure
from services.cache.storage.group_commit import GroupCommitter
from services.cache.storage.writes import STORED, Outcome, Put, WriteOp
from services.common.errors import ServiceError


class Recorder:
    """An `apply` that records each transaction; the first can be held open."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.hold_first = threading.Event()
        self.hold_first.set()
        self.fail = fail
        self.in_first = threading.Event()

    def apply(self, submissions: Sequence[Sequence[WriteOp]]) -> list[list[Outcome] | None]:
        if not self.batches:
            self.in_first.set()
            self.hold_first.wait(timeout=30)
        ops = [op for ops in submissions for op in ops]
        self.batches.append([op.key for op in ops if isinstance(op, Put)])
        if self.fail:
            raise RuntimeError("disk on fire")
        return [[STORED] * len(ops) for ops in submissions]


def _put(i: int) -> Put:
    return Put(f"p:{i}", "p", b"v", 100.0, seq=i)


async def test_writes_queued_during_a_commit_share_the_next_transaction() -> None:
    recorder = Recorder()
    recorder.hold_first.clear()
    settled: list[int] = []
    committer = GroupCommitter(recorder.apply, lambda ops, _r: settled.append(len(ops)))
    committer.start()
    first = committer.submit([_put(0)])
    await asyncio.to_thread(recorder.in_first.wait, 10)
    rest = [committer.submit([_put(i)]) for i in range(1, 64)]
    recorder.hold_first.set()
    await asyncio.gather(first, *rest)
    await committer.close()
    assert recorder.batches[0] == ["p:0"]
    assert recorder.batches[1] == [f"p:{i}" for i in range(1, 64)]  # arrival order kept
    assert settled == [1, 63]
    assert (committer.commits, committer.writes) == (2, 64)


async def test_a_group_never_splits_a_submission_and_respects_max_batch() -> None:
    recorder = Recorder()
    recorder.hold_first.clear()
    committer = GroupCommitter(recorder.apply, lambda ops, _r: None, max_batch=5)
    committer.start()
    first = committer.submit([_put(0)])
    await asyncio.to_thread(recorder.in_first.wait, 10)
    a = committer.submit([_put(1), _put(2), _put(3)])
    b = committer.submit([_put(4), _put(5), _put(6)])  # would make 6 > 5: next group
    recorder.hold_first.set()
    await asyncio.gather(first, a, b)
    await committer.close()
    assert recorder.batches == [["p:0"], ["p:1", "p:2", "p:3"], ["p:4", "p:5", "p:6"]]


async def test_a_failed_commit_fails_every_writer_with_unavailable() -> None:
    recorder = Recorder(fail=True)
    outcomes: list[object] = []
    committer = GroupCommitter(recorder.apply, lambda ops, results: outcomes.append(results))
    committer.start()
    futures = [committer.submit([_put(i)]) for i in range(3)]
    for future in futures:
        with pytest.raises(ServiceError) as caught:
            await future
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        assert "RuntimeError" in caught.value.message
    assert outcomes and all(o is None for o in outcomes)
    await committer.close()


async def test_a_commit_failed_for_a_known_cause_answers_that_cause() -> None:
    recorder = Recorder(fail=True)
    full = CacheError(Failure.DISK_FULL, "the disk is full; the write was not applied")
    committer = GroupCommitter(recorder.apply, lambda ops, results: None, explain=lambda e: full)
    committer.start()
    with pytest.raises(ServiceError) as caught:
        await committer.submit([_put(0)])
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "not applied" in caught.value.message
    await committer.close()


async def test_close_commits_what_is_queued_then_refuses() -> None:
    recorder = Recorder()
    recorder.hold_first.clear()
    committer = GroupCommitter(recorder.apply, lambda ops, _r: None)
    committer.start()
    futures = [committer.submit([_put(0)])]
    await asyncio.to_thread(recorder.in_first.wait, 10)
    futures += [committer.submit([_put(i)]) for i in range(1, 10)]
    closing = asyncio.create_task(committer.close())
    await asyncio.sleep(0)
    with pytest.raises(ServiceError) as caught:
        committer.submit([_put(99)])
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    recorder.hold_first.set()
    await closing
    assert all(f.done() and f.exception() is None for f in futures)
    assert sum(len(b) for b in recorder.batches) == 10
