"""Ownership across processes: one lease per prefix in the shared database.

Local validity: a lease counts as ours only until `started + lease - margin` on
this process's monotonic clock, where `started` was read before the transaction
that acquired or renewed it began. The database's expiry is at least `lease`
after that start, so we stop serving a prefix (margin) before any other process
may take it. Writes are fenced by epoch in the commit's own transaction (db.py),
which covers what local validity cannot: a commit already under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from services.cache.errors import CacheError, Failure
from services.cache.ownership.lease_db import Beat, Claim, LeaseDb
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.liveness import has_exited
from services.cache.ownership.membership import View, preferred
from services.cache.ownership.owners import Fenced, MemberInfo, NotOwner, Owned, OwnerInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

# Local validity ends this share of a lease before the database's expiry.
MARGIN = 0.25
# Heartbeats (renewals) run this often, as a share of the lease...
TICK = 0.25
# ...but at least this often (seconds), so a long lease still notices members soon.
MAX_TICK = 5.0
# A node's first heartbeat is tried again on database errors for this long (seconds).
START_TRIES_SECONDS = 30.0


@dataclass(slots=True)
class _Held:
    epoch: int
    # Monotonic deadline of local validity.
    valid_until: float
    # Database-clock expiry (reported by GetOwnership).
    expires_at: float
    # Monotonic start of the transaction that gave it to us.
    since: float
    releasing: bool = False


class LeaseOwnership:
    """Leases, membership and rebalancing for one process; see the module docstring."""

    exclusive = False

    def __init__(
        self,
        db: LeaseDb,
        metrics: OwnershipMetrics,
        *,
        monotonic: Callable[[], float],
        detect_exits: bool = True,
    ) -> None:
        self._db = db
        self.node_id = db.me.node_id
        self.token: str | None = db.me.token
        self._host = db.me.host if detect_exits else ""
        self._metrics = metrics
        self._monotonic = monotonic
        self.lease_seconds = db.lease_seconds
        self._held: dict[str, _Held] = {}
        self._view = View(started=monotonic(), db_now=0.0)
        self._member_until = float("-inf")
        self._last_error = "no heartbeat yet"
        self._owned: Owned | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acquiring: dict[str, asyncio.Future[Claim | None]] = {}
        # Prefixes waiting for the next acquisition transaction, and the task running them.
        self._wanted: list[str] = []
        self._acquirer: asyncio.Task[None] | None = None
        self._handing: set[str] = set()
        # After a failed on-demand acquisition, requests wait this long to try again.
        self._retry_at: dict[str, float] = {}
        # Member token -> when this node last saw it come alive (monotonic).
        self._alive_since: dict[str, float] = {}
        # Prefix -> monotonic start of the transaction that released it.
        self._released: dict[str, float] = {}
        self._warned_twin = False
        self._joined_at: float | None = None
        metrics.watch(lambda: len(self._held), lambda: len(self._view.alive(monotonic())))

    @property
    def margin(self) -> float:
        return self.lease_seconds * MARGIN

    @property
    def tick(self) -> float:
        return min(self.lease_seconds * TICK, MAX_TICK)

    # -- lifecycle -------------------------------------------------------------

    async def start(self, owned: Owned) -> None:
        """First heartbeat, then renew. A database error is tried again for a while (a
        node starting beside busy ones met a row lock or a slow commit, and exited);
        one that lasts START_TRIES_SECONDS fails the start."""
        self._owned = owned
        deadline = self._monotonic() + START_TRIES_SECONDS
        while True:
            try:
                beat = await self._on_writer(self._db.heartbeat)
                break
            except DBAPIError as exc:
                if self._monotonic() >= deadline:
                    raise
                log.warning("first lease heartbeat failed, trying again: %s", _first_line(exc))
                await asyncio.sleep(self.tick)
        self._absorb(beat)
        self._rebalance()
        self._loop = asyncio.get_running_loop().create_task(self._run(), name="cache-leases")

    async def stop(self) -> None:
        """Stop renewing, release every lease and leave the membership."""
        self._stop.set()
        if self._loop is not None:
            await self._loop
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owned is None:
            return
        try:
            released = await self._on_writer(self._db.leave)
        except Exception as exc:
            log.warning("could not release leases on stop (they will expire): %s", exc)
            return
        self._metrics.releases.inc(len(self._held))
        self._held.clear()
        log.info("released %d prefix leases and left the membership", released)

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick)
            if self._stop.is_set():
                return
            try:
                beat = await self._on_writer(self._db.heartbeat)
            except Exception as exc:
                self._failed(exc)
                continue
            self._absorb(beat)
            self._rebalance()

    def _failed(self, exc: Exception) -> None:
        first = self._last_error == ""
        self._last_error = _first_line(exc)
        log.log(logging.WARNING if first else logging.DEBUG, "lease heartbeat failed: %s", exc)

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        assert self._owned is not None, "start() first"
        return await asyncio.get_running_loop().run_in_executor(self._owned.writer, fn)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what heartbeats and claims tell us ------------------------------------

    def _absorb(self, beat: Beat) -> None:
        exited = frozenset(m.token for m in beat.members if has_exited(m.pid, m.host, self._host))
        leases = {lease.prefix: lease for lease in beat.leases}
        self._view = View(beat.started, beat.db_now, beat.members, leases, exited)
        self._alive_since = {
            m.token: self._alive_since.get(m.token, beat.started)
            for m in self._view.alive(beat.started)
        }
        self._member_until = beat.started + self.lease_seconds - self.margin
        self._last_error = ""
        if self._joined_at is None:
            self._joined_at = beat.db_now
        twin = self._view.twin(self.node_id, self.token or "", self._joined_at, beat.started)
        if twin is not None and not self._warned_twin:
            self._warned_twin = True
            log.warning(
                "another live process (pid %d at %s) also has CACHE_NODE_ID=%s: node ids "
                "must be unique; leases still keep one owner per prefix, but prefixes will "
                "not spread as intended",
                twin.pid,
                twin.address,
                self.node_id,
            )
        until = beat.started + self.lease_seconds - self.margin
        for prefix, held in list(self._held.items()):
            if held.since > beat.started:
                continue  # acquired after this heartbeat read the table
            if beat.renewed.get(prefix) == held.epoch:
                held.valid_until = max(held.valid_until, until)
                held.expires_at = beat.db_now + self.lease_seconds
            else:
                self._drop(prefix, lost=not held.releasing)
        for prefix, epoch in beat.renewed.items():
            # Ours in the database, unknown here (an acquisition whose reply was lost):
            # adopt it like a fresh one. Not if we released it since this heartbeat
            # read the table (transactions on the writer thread start in order).
            if prefix not in self._held and self._released.get(prefix, -1.0) < beat.started:
                self._take(prefix, epoch, beat.started, beat.db_now + self.lease_seconds)

    def _claimed(self, claim: Claim) -> None:
        lease = claim.lease
        self._view.leases[lease.prefix] = lease
        prefix = lease.prefix
        if not claim.acquired:
            self._retry_at[prefix] = self._monotonic() + self.tick / 4
            return
        self._retry_at.pop(prefix, None)
        held = self._held.get(prefix)
        if held is not None and held.epoch == lease.epoch:
            held.valid_until = max(
                held.valid_until, claim.started + self.lease_seconds - self.margin
            )
            held.expires_at = lease.expires_at
            return
        if held is not None:
            self._drop(prefix, lost=True)
        self._take(prefix, lease.epoch, claim.started, lease.expires_at)
        previous = claim.previous
        if previous is not None and previous.owner_token != self.token:
            self._metrics.takeovers.inc()
            log.info(
                "took over prefix %r from %s (epoch %d -> %d)",
                prefix,
                previous.owner_id,
                previous.epoch,
                lease.epoch,
            )

    def _take(self, prefix: str, epoch: int, started: float, expires_at: float) -> None:
        valid_until = started + self.lease_seconds - self.margin
        self._held[prefix] = _Held(epoch, valid_until, expires_at, started)
        self._metrics.acquisitions.inc()
        assert self._owned is not None
        self._owned.acquired(prefix, epoch)

    def _drop(self, prefix: str, *, lost: bool) -> None:
        del self._held[prefix]
        if lost:
            self._metrics.losses.inc()
            log.warning("lost the lease of prefix %r", prefix)
        assert self._owned is not None
        self._owned.lost(prefix)

    # -- rebalancing -------------------------------------------------------------

    def _rebalance(self) -> None:
        """Hand over what another live member should own; take what is free and ours.

        A prefix goes only to a member seen alive for a whole lease: one that
        flaps (or wakes from a pause) does not pull its prefixes back and forth.
        """
        if self.problem() is not None:
            return
        now = self._monotonic()
        alive = self._alive_ids(now)
        settled = {
            m.node_id
            for m in self._view.alive(now)
            if self._alive_since.get(m.token, now) <= now - self.lease_seconds
        }
        for prefix, held in self._held.items():
            if (
                prefix not in self._handing
                and not held.releasing
                and preferred(prefix, alive) in settled - {self.node_id}
            ):
                self._handing.add(prefix)
                self._spawn(self._hand_over(prefix))
        for prefix in self._view.leases:
            if (
                prefix not in self._held
                and prefix not in self._acquiring
                and self._view.is_free(prefix, now)
                and preferred(prefix, alive) == self.node_id
            ):
                self._spawn(self._acquire(prefix))

    async def _hand_over(self, prefix: str) -> None:
        try:
            assert self._owned is not None
            await self._owned.hand_over(prefix)
        finally:
            self._handing.discard(prefix)

    async def release(self, prefix: str) -> bool:
        """Give up our lease on `prefix` now (the store has let its commits land)."""
        held = self._held.get(prefix)
        if held is None:
            return False
        held.releasing = True

        def release() -> float:
            started = self._monotonic()
            self._db.release({prefix: held.epoch})
            return started

        try:
            self._released[prefix] = await self._on_writer(release)
        except Exception as exc:
            held.releasing = False
            log.warning("could not release prefix %r: %s", prefix, exc)
            return False
        if self._held.get(prefix) is held:
            del self._held[prefix]
        self._metrics.releases.inc()
        log.info("handed over prefix %r (epoch %d)", prefix, held.epoch)
        return True

    async def _acquire(self, prefix: str) -> Claim | None:
        """One acquisition attempt at a time per prefix; None when the database failed.

        Attempts wanting the writer at the same time share one transaction: a dead
        owner's prefixes are taken together, and the heartbeat never queues behind
        a transaction per prefix."""
        pending = self._acquiring.get(prefix)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._acquiring[prefix] = pending
            self._wanted.append(prefix)
            if self._acquirer is None:
                self._acquirer = asyncio.get_running_loop().create_task(self._acquire_wanted())
                self._tasks.add(self._acquirer)
                self._acquirer.add_done_callback(self._tasks.discard)
        return await asyncio.shield(pending)

    async def _acquire_wanted(self) -> None:
        """Take every wanted prefix, a transaction per batch, until none is left."""
        batch: list[str] = []
        try:
            while self._wanted:
                batch, self._wanted = self._wanted, []
                exited = self._view.exited
                claims: dict[str, Claim] = {}
                try:
                    claims = await self._on_writer(
                        functools.partial(self._db.acquire_many, batch, exited)
                    )
                except Exception as exc:
                    log.warning("could not acquire %s: %s", _some(batch), exc)
                # Not taken (failed, or still locked): requests wait a moment to ask again.
                retry_at = self._monotonic() + self.tick / 4
                for prefix in batch:
                    claim = claims.get(prefix)
                    if claim is not None:
                        try:
                            self._claimed(claim)
                        except Exception as exc:
                            log.warning("could not take prefix %r: %s", prefix, exc)
                            claim = None
                    if claim is None:
                        self._retry_at[prefix] = retry_at
                    self._settle(prefix, claim)
                batch = []
        finally:
            # Cancelled (stop): nobody waits for ever.
            for prefix in batch + self._wanted:
                self._settle(prefix, None)
            self._wanted = []
            self._acquirer = None

    def _settle(self, prefix: str, claim: Claim | None) -> None:
        future = self._acquiring.pop(prefix, None)
        if future is not None and not future.done():
            future.set_result(claim)

    # -- the store's and the router's questions ----------------------------------

    async def admit(self, prefix: str) -> int:
        """The epoch to serve `prefix` under, acquiring it if it is free and ours to take."""
        held = self._held.get(prefix)
        if held is not None:
            if held.releasing:
                raise NotOwner(prefix, self._remote_owner(prefix), "this node is handing it over")
            if self._monotonic() < held.valid_until:
                return held.epoch
            raise CacheError(
                Failure.UNAVAILABLE,
                f"prefix {prefix!r}: this node's lease may have lapsed (its renewals are "
                f"failing: {self._last_error or 'slow database'}); retry shortly",
            )
        problem = self.problem()
        if problem is not None:
            raise CacheError(
                Failure.UNAVAILABLE,
                f"prefix {prefix!r}: this node cannot hold leases now ({problem}); "
                "retry on another node",
            )
        now = self._monotonic()
        if preferred(prefix, self._alive_ids(now)) != self.node_id:
            raise NotOwner(prefix, self._remote_owner(prefix), "this node does not own it")
        if now >= self._retry_at.get(prefix, 0.0):
            await self._acquire(prefix)
        held = self._held.get(prefix)
        if held is not None and not held.releasing and self._monotonic() < held.valid_until:
            return held.epoch
        raise NotOwner(prefix, self._remote_owner(prefix), "another node holds its lease")

    def held_prefixes(self) -> list[str]:
        """The prefixes whose lease this node holds now (shards.py sums them)."""
        return list(self._held)

    def current_epoch(self, prefix: str) -> int | None:
        held = self._held.get(prefix)
        return None if held is None else held.epoch

    def valid_for(self, prefix: str) -> float:
        """Seconds our lease on `prefix` stays locally valid (0 when we hold none)."""
        held = self._held.get(prefix)
        if held is None or held.releasing:
            return 0.0
        return max(0.0, held.valid_until - self._monotonic())

    def route(self, prefix: str) -> OwnerInfo | None:
        if prefix in self._held:
            return None
        alive = self._alive_ids(self._monotonic())
        if self.problem() is None and preferred(prefix, alive) == self.node_id:
            return None  # ours to take: admit() acquires it (or learns who holds it)
        # Another node's; or nobody's we know of, and admit() says why.
        return self._remote_owner(prefix)

    def refusal(self, prefix: str, epoch: int) -> CacheError:
        owner = self._remote_owner(prefix) if prefix not in self._held else None
        return Fenced(
            prefix, owner, f"the write was refused: this node's lease epoch {epoch} is not current"
        )

    def problem(self) -> str | None:
        age = self._monotonic() - self._member_until
        if age < 0:
            return None
        return (
            f"its membership heartbeat has not succeeded in time "
            f"(CACHE_LEASE_SECONDS={self.lease_seconds:g}): {self._last_error or 'slow database'}"
        )

    def _alive_ids(self, now: float) -> set[str]:
        alive = {m.node_id for m in self._view.alive(now)}
        if self.problem() is None:
            alive.add(self.node_id)
        else:
            alive.discard(self.node_id)
        return alive

    def _remote_owner(self, prefix: str) -> OwnerInfo | None:
        """Who serves `prefix` if not us: its holder, else the member that should take it."""
        now = self._monotonic()
        holder = self._view.holder_info(prefix, now, self.token)
        if holder is not None:
            return holder
        return self._view.candidate(prefix, self._alive_ids(now) - {self.node_id}, now)

    def owner_of(self, prefix: str) -> OwnerInfo:
        held = self._held.get(prefix)
        if held is not None:
            return OwnerInfo(prefix, self.node_id, self._db.address(), held.epoch, held.expires_at)
        if self.route(prefix) is None:
            return OwnerInfo(prefix, self.node_id, self._db.address(), 0, 0.0)
        return self._remote_owner(prefix) or OwnerInfo(prefix, "", "", 0, 0.0)

    def members(self) -> list[MemberInfo]:
        return self._view.member_infos(self._monotonic())

    def owners(self) -> list[OwnerInfo]:
        now = self._monotonic()
        found = {p: self.owner_of(p) for p in self._held}
        for prefix in self._view.leases:
            holder = self._view.holder_info(prefix, now, self.token)
            if prefix not in found and holder is not None:
                found[prefix] = holder
        return [found[p] for p in sorted(found)]


def _some(prefixes: list[str]) -> str:
    """A log's short name for a batch of prefixes."""
    if len(prefixes) == 1:
        return f"prefix {prefixes[0]!r}"
    return f"{len(prefixes)} prefixes ({prefixes[0]!r}, ...)"


def _first_line(exc: Exception) -> str:
    """An error's type and first line, for a log line or a refusal's reason."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
