"""The crash-loop checker itself: it accepts legal final states and catches lost writes."""

from __future__ import annotations

from tests.reliability.history import ABSENT, History, Op, allowed_states


def op(op_id: int, state: object, issued: float, acked: float | None) -> Op:
    return Op(op_id, "set", state, issued, acked)


def test_the_latest_acknowledged_write_must_survive() -> None:
    ops = [op(1, "a", 0.0, 1.0), op(2, "b", 2.0, 3.0)]
    assert allowed_states(ops) == ["b"]


def test_overlapping_acknowledged_writes_may_land_in_either_order() -> None:
    ops = [op(1, "a", 0.0, 3.0), op(2, "b", 1.0, 2.0)]
    assert sorted(allowed_states(ops)) == ["a", "b"]


def test_an_unacknowledged_write_may_or_may_not_have_landed() -> None:
    ops = [op(1, "a", 0.0, 1.0), op(2, "b", 2.0, None)]
    assert sorted(allowed_states(ops)) == ["a", "b"]
    assert sorted(allowed_states([op(1, "a", 0.0, None)]), key=str) == [ABSENT, "a"]


def test_a_lost_write_and_a_resurrected_value_are_violations() -> None:
    history = History()
    first = history.begin(1, "set", {"p:k": "old"})
    history.ack(first)
    second = history.begin(2, "set", {"p:k": "new"})
    history.ack(second)
    deleted = history.begin(3, "delete", {"p:gone": ABSENT})
    history.ack(deleted)
    assert history.check({"p:k": "new", "p:gone": ABSENT}) == []
    lost = history.check({"p:k": "old", "p:gone": ABSENT})
    assert [v.key for v in lost] == ["p:k"]
    assert [v.key for v in history.check({"p:k": "new", "p:gone": "zombie"})] == ["p:gone"]
    assert [v.key for v in history.check({"p:gone": ABSENT})] == ["p:k"]


def test_batches_are_all_or_nothing_and_acknowledged_ones_complete() -> None:
    history = History()
    acked = history.begin_batch(1, ["p:b1:0", "p:b1:1"])
    acked.acked = 1.0
    history.begin_batch(2, ["p:b2:0", "p:b2:1", "p:b2:2"])
    problems, applied, skipped = history.check_batches({1: 2, 2: 0})
    assert (problems, applied, skipped) == ([], 1, 1)
    problems, _, _ = history.check_batches({1: 2, 2: 1})
    assert problems == ["batch 2: 1 of 3 keys present (half-applied MSet)"]
    problems, _, _ = history.check_batches({1: 0, 2: 3})
    assert problems == ["batch 1: acknowledged but no key present"]


def test_settle_starts_the_next_round_from_what_was_seen() -> None:
    history = History()
    history.ack(history.begin(1, "set", {"p:k": "v"}))
    history.settle({"p:k": "v"})
    assert history.check({"p:k": "v"}) == []
    assert [v.key for v in history.check({})] == ["p:k"]
    assert history.batches == []
