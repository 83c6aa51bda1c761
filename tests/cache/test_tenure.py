"""The store across changes of ownership: memory starts again from the database on every
acquisition, a lost prefix is refused, commits of an old tenure are not remembered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from services.cache.errors import CacheError
from services.cache.ownership.owners import (
    NotOwner,
    Owned,
)
from services.cache.storage.db import CacheDb
from services.cache.storage.writes import Put
from services.cache.store.admission import Admission, StoreLimits
from services.cache.store.cache_store import CacheStore
from services.cache.store.keys import KeyRules
from services.cache.store.stats import CacheStats
from services.cache.store.ttl_policy import TtlPolicy
from tests.cache.harness import FakeClock, blob, read, sqlite_url, writer_blocked
from tests.support.polling import eventually


class HandedOwnership:
    """The store's side of ownership, handed out and taken back prefix by prefix (no database)."""

    exclusive = False
    token: str | None = None

    def __init__(self) -> None:
        self.epochs: dict[str, int] = {}
        self.owned: Owned | None = None

    async def start(self, owned: Owned) -> None:
        self.owned = owned

    async def stop(self) -> None:
        return None

    def give(self, prefix: str, epoch: int) -> None:
        self.epochs[prefix] = epoch
        assert self.owned is not None
        self.owned.acquired(prefix, epoch)

    def take_back(self, prefix: str) -> None:
        del self.epochs[prefix]
        assert self.owned is not None
        self.owned.lost(prefix)

    async def admit(self, prefix: str) -> int:
        if prefix not in self.epochs:
            raise NotOwner(prefix, None, "not ours")
        return self.epochs[prefix]

    def current_epoch(self, prefix: str) -> int | None:
        return self.epochs.get(prefix)

    def refusal(self, prefix: str, epoch: int) -> CacheError:
        return NotOwner(prefix, None, "refused")

    async def release(self, prefix: str) -> bool:
        self.epochs.pop(prefix, None)
        return True

    def problem(self) -> str | None:
        return None


@pytest.fixture
async def handed(tmp_path: Path) -> AsyncIterator[tuple[CacheStore, HandedOwnership]]:
    ownership = HandedOwnership()
    keys, limits = KeyRules(1), StoreLimits()
    store = CacheStore(
        CacheDb(sqlite_url(tmp_path)),
        keys=keys,
        admission=Admission(keys, TtlPolicy(), limits),
        stats=CacheStats(CollectorRegistry()),
        ownership=ownership,
        clock=FakeClock(time.time()),
        limits=limits,
    )
    await store.open()
    try:
        yield store, ownership
    finally:
        await store.close()


def another_owner_writes(tmp_path: Path, key: str, value: object) -> None:
    """What a process owning the prefix in between would have committed."""
    other = CacheDb(sqlite_url(tmp_path))
    try:
        prefix = key.partition(":")[0]
        other.apply([[Put(key, prefix, blob(value), time.time() + 600, seq=1)]], time.time())
    finally:
        other.dispose()


async def test_memory_starts_again_from_the_database_on_each_acquisition(
    handed: tuple[CacheStore, HandedOwnership], tmp_path: Path
) -> None:
    store, ownership = handed
    ownership.give("stock", 1)
    await store.set("stock:k", blob("ours"), 600)
    assert await read(store, "stock:k") == "ours"
    ownership.take_back("stock")
    with pytest.raises(NotOwner):
        await store.get("stock:k")
    another_owner_writes(tmp_path, "stock:k", "theirs")
    another_owner_writes(tmp_path, "stock:new", "also theirs")
    ownership.give("stock", 3)
    assert await read(store, "stock:k") == "theirs"
    assert await read(store, "stock:new") == "also theirs"


async def test_an_acquired_prefix_is_loaded_whole_so_misses_need_no_read(
    handed: tuple[CacheStore, HandedOwnership], tmp_path: Path
) -> None:
    store, ownership = handed
    for i in range(20):
        another_owner_writes(tmp_path, f"news:{i}", i)
    ownership.give("news", 1)
    await eventually(lambda: "news" in store.state().whole_prefixes)
    assert [key for key in (f"news:{i}" for i in range(20)) if store.remembered(key) is None] == []
    ownership.take_back("news")
    assert "news" not in store.state().whole_prefixes and store.remembered("news:0") is None


async def test_a_commit_of_a_tenure_that_ended_is_not_remembered(
    handed: tuple[CacheStore, HandedOwnership],
) -> None:
    store, ownership = handed
    ownership.give("stock", 1)
    await store.set("stock:k", blob("first"), 600)
    with writer_blocked(store) as release:
        late = asyncio.ensure_future(store.set("stock:k", blob("late"), 600))
        await eventually(lambda: store.state().pending == 1)
        # Holding the gate keeps the new tenure's reload waiting behind us.
        async with store.hold("stock"):
            # The lease moves (and comes back) while the write waits for its commit.
            ownership.take_back("stock")
            ownership.give("stock", 2)
            release()
            await late  # no fence in this test (token None): it commits
            assert store.remembered("stock:k") is None  # epoch 1's write is not epoch 2's memory
    # The new tenure's reload reads it back from the database.
    await eventually(lambda: "stock" in store.state().whole_prefixes)
    entry = store.remembered("stock:k")
    assert entry is not None and entry.blob == blob("late")


async def test_a_prefix_not_owned_is_refused_before_anything_is_queued(
    handed: tuple[CacheStore, HandedOwnership],
) -> None:
    store, _ = handed
    with pytest.raises(NotOwner) as caught:
        await store.mset([("free:a", blob(1), 60)])
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert store.state().queued == 0 and store.state().pending == 0
