"""Group commit: every write queued while a commit runs goes into the next transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from services.cache.errors import CacheError, Failure
from services.cache.storage.db_link import DbLink, is_disconnect
from services.cache.storage.writes import Outcome, WriteOp

log = logging.getLogger(__name__)

# Runs the submissions in one transaction (in the writer thread); per submission,
# one outcome per op, or None when the submission was refused (fenced) and skipped.
Apply = Callable[[Sequence[Sequence[WriteOp]]], list[list[Outcome] | None]]
# Told the outcome on the event loop before any waiter is: the applied ops and
# their outcomes, or every op and None when the transaction failed.
Settle = Callable[[Sequence[WriteOp], list[Outcome] | None], None]
# The error of a refused submission (after forgetting its ops).
Refuse = Callable[[Sequence[WriteOp]], CacheError]
# Told the size and duration of every commit attempt, and whether it succeeded.
Observe = Callable[[int, float, bool], None]
# The error for a failed commit whose writes are known not applied, else None.
Explain = Callable[[BaseException], CacheError | None]


class _Submission:
    __slots__ = ("future", "ops")

    def __init__(self, ops: Sequence[WriteOp], future: asyncio.Future[list[Outcome]]) -> None:
        self.ops = ops
        self.future = future


class GroupCommitter:
    """One writer thread; a task drains the queue, one transaction per drained group.

    There is no timer: while one transaction commits, new writes queue up, and
    the next transaction takes all of them. Under load the groups grow by
    themselves; alone, a write commits at once.
    """

    def __init__(
        self,
        apply: Apply,
        settle: Settle,
        *,
        max_batch: int = 2048,
        observe: Observe | None = None,
        refuse: Refuse | None = None,
        link: DbLink | None = None,
        explain: Explain | None = None,
    ) -> None:
        self._apply = apply
        self._explain = explain or (lambda exc: None)
        self._settle = settle
        self._refuse = refuse or _refused
        self._observe = observe
        self._link = link
        self.max_batch = max_batch
        self._queue: deque[_Submission] = deque()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Transactions committed, and writes they carried.
        self.commits = 0
        self.writes = 0

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The writer thread, for other work that must not race the commits."""
        return self._executor

    def start(self) -> None:
        """Start draining the queue."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    def submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[list[Outcome]]:
        """Queue `ops` (committed together, in order); the future resolves after the commit."""
        if self._closing:
            raise CacheError(
                Failure.UNAVAILABLE, "the cache is shutting down; retry on another node"
            )
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        # The writer may have given up waiting (its RPC was cancelled) while
        # readers still wait on this future; a failure nobody awaits is not an error.
        future.add_done_callback(_retrieve)
        self._queue.append(_Submission(ops, future))
        self._wake.set()
        return future

    @property
    def queued(self) -> int:
        """Submissions waiting for a commit."""
        return len(self._queue)

    async def close(self) -> None:
        """Commit everything already queued; refuse new writes. The writer thread stays
        up for `shutdown` (ownership releases its leases on it after the last commit)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def shutdown(self) -> None:
        """Stop the writer thread (after `close`)."""
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            group = [self._queue.popleft()]
            size = len(group[0].ops)
            # Never split a submission: an MSet commits whole or not at all.
            while self._queue and size + len(self._queue[0].ops) <= self.max_batch:
                submission = self._queue.popleft()
                group.append(submission)
                size += len(submission.ops)
            await self._commit(group)

    async def _commit(self, group: list[_Submission]) -> None:
        ops = [op for submission in group for op in submission.ops]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            outcomes = await loop.run_in_executor(
                self._executor, self._apply, [submission.ops for submission in group]
            )
        except Exception as exc:
            self._report(len(ops), started, ok=False)
            # A cause known to leave nothing applied (a full disk) is logged where it
            # is known (disk.py), and answered as such.
            known = self._explain(exc)
            if known is None and self._link is not None and is_disconnect(exc):
                # A failover or an outage: one line when it starts, not one per commit.
                self._link.failed("commit", exc)
            elif known is None:
                log.error("commit of %d writes failed: %s", len(ops), exc, exc_info=True)
            self._settle(ops, None)
            # A connection lost during COMMIT leaves the outcome unknown: never
            # acknowledged, and the caller must not assume it was not applied.
            error = known or CacheError(
                Failure.UNAVAILABLE,
                f"the database commit failed ({type(exc).__name__}); the write was not "
                "acknowledged and may or may not have been applied: retry",
            )
            for submission in group:
                if not submission.future.done():
                    submission.future.set_exception(error)
            return
        self._report(len(ops), started, ok=True)
        if self._link is not None:
            self._link.ok()
        applied = [(s, out) for s, out in zip(group, outcomes, strict=True) if out is not None]
        self.commits += 1
        self.writes += sum(len(s.ops) for s, _ in applied)
        self._settle(
            [op for s, _ in applied for op in s.ops], [r for _, out in applied for r in out]
        )
        for submission, outcome in zip(group, outcomes, strict=True):
            if outcome is None:
                error = self._refuse(submission.ops)
                if not submission.future.done():
                    submission.future.set_exception(error)
            elif not submission.future.done():
                submission.future.set_result(outcome)

    def _report(self, size: int, started: float, *, ok: bool) -> None:
        if self._observe is not None:
            self._observe(size, time.perf_counter() - started, ok)


def _refused(ops: Sequence[WriteOp]) -> CacheError:
    return CacheError(Failure.UNAVAILABLE, "the write was refused at commit; retry")


def _retrieve(future: asyncio.Future[list[Outcome]]) -> None:
    if not future.cancelled():
        future.exception()
