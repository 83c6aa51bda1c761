"""The bounded-staleness checker finds what it must, and passes what it must."""

from __future__ import annotations

from harness.nemesis.staleness import Read, Seen, Write, violations

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


# An unknown write (its call timed out) that the network held: it reached the
# server after its sender's next write was acknowledged, and overwrote it.
LATE = [
    Write("k", "v1", sent=0.0, acked=0.1),
    Write("k", "held", sent=1.0, acked=None),
    Write("k", "v3", sent=3.0, acked=3.1),
]


def test_an_unknown_write_a_server_read_saw_land_late_may_be_served() -> None:
    # The server held "held" at 5.0, after v3's acknowledgement: it landed late.
    seen = [Seen("k", "held", ended=5.0)]
    assert violations(LATE, [Read("k", "held", began=6.5)], bound=1.0, seen=seen) == []


def test_an_unknown_write_nobody_saw_land_late_is_still_stale() -> None:
    found = violations(LATE, [Read("k", "held", began=6.5)], bound=1.0)
    assert len(found) == 1 and "'held'" in found[0] and "v3" in found[0]


def test_a_late_value_overwritten_after_it_was_seen_is_stale() -> None:
    seen = [Seen("k", "held", ended=5.0)]
    later = [*LATE, Write("k", "v4", sent=5.5, acked=5.6)]
    assert violations(later, [Read("k", "held", began=7.0)], bound=1.0, seen=seen)
    # Within the bound of v4's acknowledgement it may still be served.
    assert violations(later, [Read("k", "held", began=6.5)], bound=1.0, seen=seen) == []


def test_an_acknowledged_value_cannot_land_late() -> None:
    # v1 was acknowledged before v3 was sent (one writer): it cannot follow v3.
    seen = [Seen("k", "v1", ended=5.0)]
    assert violations(LATE, [Read("k", "v1", began=6.5)], bound=1.0, seen=seen)


def test_a_near_cache_read_the_server_answered_is_evidence_of_a_late_write() -> None:
    # The near cache missed and asked the server, which held "held"; it was then served.
    asked = Read("k", "held", began=6.0, from_server=True, ended=6.01)
    assert violations(LATE, [asked, Read("k", "held", began=6.5)], bound=1.0) == []
    # Served from memory both times: nothing shows the server held it after v3.
    remembered = Read("k", "held", began=6.0)
    assert len(violations(LATE, [remembered, Read("k", "held", began=6.5)], bound=1.0)) == 2
