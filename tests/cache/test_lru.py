"""The bounded memory layer."""

from __future__ import annotations

from services.cache.store.lru import LruMemory, entry_size


def test_least_recently_used_goes_first_and_the_bound_holds() -> None:
    size = entry_size("p:k0", b"x" * 100)
    memory = LruMemory(max_bytes=3 * size)
    for i in range(3):
        assert memory.put(f"p:k{i}", "p", b"x" * 100, 10.0) == 0
    assert memory.get("p:k0") is not None  # k0 is now the most recent
    assert memory.put("p:k3", "p", b"x" * 100, 10.0) == 1
    assert "p:k1" not in memory
    assert {"p:k0", "p:k2", "p:k3"} == {k for k in ("p:k0", "p:k1", "p:k2", "p:k3") if k in memory}
    assert memory.bytes == 3 * size <= memory.max_bytes
    assert memory.evictions == 1


def test_replacing_a_key_updates_its_size() -> None:
    memory = LruMemory(max_bytes=10_000)
    memory.put("p:a", "p", b"x" * 10, 10.0)
    memory.put("p:a", "p", b"x" * 500, 10.0)
    assert len(memory) == 1
    assert memory.bytes == entry_size("p:a", b"x" * 500)


def test_an_entry_bigger_than_the_bound_is_not_admitted() -> None:
    memory = LruMemory(max_bytes=1000)
    memory.put("p:small", "p", b"x", 10.0)
    assert memory.put("p:big", "p", b"x" * 2000, 10.0) == 1
    assert "p:big" not in memory
    assert "p:small" in memory
    assert memory.evictions == 1


def test_remove_prefix_and_purge_expired() -> None:
    memory = LruMemory(max_bytes=100_000)
    memory.put("a:1", "a", b"1", 10.0)
    memory.put("a:2", "a", b"2", 20.0)
    memory.put("b:1", "b", b"3", 10.0)
    assert memory.prefix_counts(now=15.0) == {"a": 1}
    assert memory.remove_prefix("a") == 2
    assert len(memory) == 1
    assert memory.purge_expired(now=10.0) == 1
    assert len(memory) == 0
    assert memory.bytes == 0


def test_memory_vouches_for_a_whole_prefix_until_it_evicts_or_doubts() -> None:
    size = entry_size("p:k0", b"x" * 100)
    memory = LruMemory(max_bytes=2 * size)
    since = memory.evictions
    memory.put("p:k0", "p", b"x" * 100, 10.0)
    memory.vouch("p", since=since)
    assert memory.holds_whole("p") and not memory.holds_whole("q")
    assert not memory.holds_everything
    memory.doubt("p")
    assert not memory.holds_whole("p")
    memory.vouch(None, since=memory.evictions)
    memory.vouch("p", since=memory.evictions)
    assert memory.holds_everything and memory.holds_whole("q")
    memory.put("q:k1", "q", b"x" * 100, 10.0)
    assert memory.holds_whole("p")  # room enough: nothing evicted
    memory.put("q:k2", "q", b"x" * 100, 10.0)  # evicts p:k0
    assert not memory.holds_everything and not memory.holds_whole("p")
    assert memory.whole_prefixes() == frozenset()


def test_a_load_that_evicted_is_not_vouched_for() -> None:
    size = entry_size("p:k0", b"x" * 100)
    memory = LruMemory(max_bytes=size)
    since = memory.evictions
    memory.put("p:k0", "p", b"x" * 100, 10.0)
    memory.put("p:k1", "p", b"x" * 100, 10.0)  # evicts p:k0 during the load
    memory.vouch("p", since=since)
    assert not memory.holds_whole("p")
