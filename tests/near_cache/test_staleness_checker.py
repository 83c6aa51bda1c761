"""The bounded-staleness checker finds what it must, and passes what it must."""

from __future__ import annotations

from harness.nemesis.staleness import Read, Write, violations

WRITES = [
    Write("k", "v1", sent=0.0, acked=0.1),
    Write("k", "v2", sent=1.0, acked=1.1),
    Write("k", None, sent=3.0, acked=3.1),  # a delete
    Write("t", "short", sent=0.0, acked=0.1, ttl=1.0),
]


def test_a_value_overwritten_longer_than_the_bound_ago_is_a_violation() -> None:
    found = violations(WRITES, [Read("k", "v1", began=2.5)], bound=1.0)
    assert len(found) == 1 and "v1" in found[0]


def test_a_deleted_value_read_after_the_bound_is_a_violation() -> None:
    assert violations(WRITES, [Read("k", "v2", began=4.2)], bound=1.0)


def test_a_value_read_past_its_ttl_is_a_violation() -> None:
    assert violations(WRITES, [Read("t", "short", began=1.5)], bound=1.0)


def test_a_value_never_written_is_a_violation() -> None:
    assert violations(WRITES, [Read("k", "v9", began=0.5)], bound=1.0)


def test_reads_within_the_bound_or_of_newer_values_pass() -> None:
    reads = [
        Read("k", None, began=0.05),  # before any write
        Read("k", "v1", began=2.0),  # v2 acked 0.9 s before: within the bound
        Read("k", "v2", began=3.5),  # the delete acked 0.4 s before
        Read("k", None, began=9.0),
        Read("k", "v2", began=1.05),  # v2 before its ack: a concurrent read
        Read("t", "short", began=0.9),
    ]
    assert violations(WRITES, reads, bound=1.0) == []
