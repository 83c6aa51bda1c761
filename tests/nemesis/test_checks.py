"""The round checks catch what they exist for: a lost acknowledged write, a stale read,
a near-cache read past its bound, a key left unwritable after the fault."""

from __future__ import annotations

from harness.nemesis.checks import RoundResult, check_segment
from harness.nemesis.linearizability import READ, WRITE, Op
from harness.nemesis.staleness import Read
from harness.nemesis.workload import Segment


def _segment() -> Segment:
    segment = Segment()
    segment.add("p:k", Op(WRITE, "a", 1.0, 1.1))
    segment.add("p:k", Op(WRITE, "b", 2.0, 2.1))
    segment.add("p:k", Op(READ, "b", 2.2, 2.3, client=1))
    return segment


def _check(segment: Segment, settled: object) -> RoundResult:
    result = RoundResult("test", "sqlite", "node0")
    check_segment(
        segment,
        initial={"p:k": None},
        settled={"p:k": settled},
        started_at=0.0,
        fault_at=1.5,
        ended_at=3.0,
        result=result,
    )
    return result


def test_a_clean_history_passes_and_measures_the_window() -> None:
    segment = _segment()
    segment.add("p:k", Op(WRITE, "c", 2.5, 2.7))
    result = _check(segment, "c")
    assert (result.lost, result.stale, result.problems) == (0, 0, [])
    assert result.acknowledged == 3
    assert abs(result.window - 0.6) < 1e-9
    assert result.slowest_key == "p:k"


def test_a_key_that_stops_being_written_counts_until_the_round_ends() -> None:
    # Acknowledged 0.6 s after the fault, then never again: 0.9 s without a write.
    result = _check(_segment(), "b")
    assert (result.unrecovered, result.problems) == (0, [])
    assert abs(result.window - 0.9) < 1e-9


def test_an_acknowledged_write_lost_is_counted() -> None:
    assert _check(_segment(), "a").lost == 1


def test_a_read_of_an_overwritten_value_is_stale() -> None:
    segment = _segment()
    segment.add("p:k", Op(READ, "a", 2.4, 2.5, client=2))
    assert _check(segment, "b").stale == 1


def test_a_near_cache_read_past_its_bound_is_stale() -> None:
    segment = _segment()
    segment.near_reads.append(Read("p:k", "a", 9.0))
    assert _check(segment, "b").stale == 1


def test_a_key_never_written_after_the_fault_is_counted_unrecovered() -> None:
    segment = Segment()
    segment.add("p:k", Op(WRITE, "a", 1.0, 1.1))
    result = _check(segment, "a")
    assert (result.unrecovered, result.problems) == (1, [])
    assert result.window == 1.5


def test_a_refused_write_is_counted_and_fine_while_nobody_sees_it() -> None:
    segment = _segment()
    segment.refused["p:k"] = ["c"]
    result = _check(segment, "b")
    assert (result.refused, result.lost, result.stale, result.problems) == (1, 0, 0, [])


def test_a_refused_write_seen_by_a_read_is_a_violation() -> None:
    # RESOURCE_EXHAUSTED says "not applied": unlike an unknown outcome, it may not appear.
    segment = _segment()
    segment.refused["p:k"] = ["c"]
    segment.add("p:k", Op(READ, "c", 2.4, 2.5, client=2))
    result = _check(segment, "b")
    assert result.stale == 1
    assert any("refused RESOURCE_EXHAUSTED" in p for p in result.problems)


def test_a_refused_write_in_the_settled_state_is_lost_data_of_another_kind() -> None:
    segment = _segment()
    segment.refused["p:k"] = ["c"]
    result = _check(segment, "c")
    assert result.lost == 1
    assert any("settled state saw 'c'" in p for p in result.problems)


def test_a_write_whose_outcome_was_unknown_may_land_after_a_later_one() -> None:
    # "late" timed out (held by a partition), then landed after "b" was acknowledged;
    # a raw read and a near-cache read both saw it, and it is the settled state.
    segment = Segment()
    segment.add("p:k", Op(WRITE, "a", 1.0, 1.1))
    segment.add("p:k", Op(WRITE, "late", 1.2, None))
    segment.add("p:k", Op(WRITE, "b", 1.6, 1.7))
    segment.add("p:k", Op(READ, "late", 2.8, 2.9, client=1))
    segment.near_reads.append(Read("p:k", "late", 3.2))
    result = _check(segment, "late")
    assert (result.lost, result.stale, result.problems) == (0, 0, [])
