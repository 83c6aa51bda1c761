"""The register linearizability checker on known histories, and against brute force."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from harness.nemesis.linearizability import READ, WRITE, Op, check_register


def w(value: object, invoke: float, complete: float | None) -> Op:
    return Op(WRITE, value, invoke, complete)


def r(value: object, invoke: float, complete: float) -> Op:
    return Op(READ, value, invoke, complete)


LINEARIZABLE = {
    "empty": [],
    "a read of the initial absence": [r(None, 0, 1)],
    "sequential": [w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)],
    "a read overlapping a write sees the old value": [w("a", 0, 1), w("b", 2, 6), r("a", 3, 4)],
    "a read overlapping a write sees the new value": [w("a", 0, 1), w("b", 2, 6), r("b", 3, 4)],
    "concurrent writes, reads agree on the order": [
        w("a", 0, 5),
        w("b", 0, 5),
        r("a", 6, 7),
        r("a", 8, 9),
    ],
    "a read before the write it saw completed": [r("a", 0, 3), w("a", 1, 10)],
    "an unknown write seen later": [w("a", 0, 1), w("b", 2, None), r("b", 10, 11)],
    "an unknown write never seen": [w("a", 0, 1), w("b", 2, None), r("a", 10, 11)],
    "an unknown write taking effect late": [
        w("a", 0, 1),
        w("b", 2, None),
        r("a", 3, 4),
        r("b", 5, 6),
    ],
    "overlapping reads may see either side of a write": [
        w("a", 0, 1),
        w("b", 2, 10),
        r("b", 3, 5),
        r("a", 3, 5),
    ],
}

NOT_LINEARIZABLE = {
    "a stale read after a completed write": [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)],
    "an old value read after the new one": [
        w("a", 0, 1),
        w("b", 2, 10),
        r("b", 3, 4),
        r("a", 5, 6),
    ],
    "a value nobody wrote": [w("a", 0, 1), r("z", 2, 3)],
    "absence after a completed write": [w("a", 0, 1), r(None, 2, 3)],
    "an unknown write seen, then undone": [
        w("a", 0, 1),
        w("b", 2, None),
        r("b", 3, 4),
        r("a", 5, 6),
    ],
    "a read completing before the write it saw began": [r("a", 0, 1), w("a", 2, 3)],
    "two concurrent writes seen in both orders": [
        w("a", 0, 10),
        w("b", 0, 10),
        r("a", 11, 12),
        r("b", 13, 14),
        r("a", 15, 16),
    ],
}


@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_histories_pass(name: str) -> None:
    assert check_register(LINEARIZABLE[name]).ok


@pytest.mark.parametrize("name", sorted(NOT_LINEARIZABLE))
def test_non_linearizable_histories_fail(name: str) -> None:
    verdict = check_register(NOT_LINEARIZABLE[name])
    assert not verdict.ok
    assert verdict.stuck  # it names where the search got stuck


def brute_force(history: Sequence[Op], initial: object = None) -> bool:
    """Every order of every subset keeping all definite ops: the definition, slowly."""
    definite = [op for op in history if op.complete is not None]
    optional = [op for op in history if op.complete is None]
    for size in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, size):
            ops = definite + list(chosen)
            for order in itertools.permutations(ops):
                if _respects_real_time(order) and _reads_fit(order, initial):
                    return True
    return False


def _respects_real_time(order: Sequence[Op]) -> bool:
    return all(
        not (later.ends <= earlier.invoke)
        for i, earlier in enumerate(order)
        for later in order[i + 1 :]
    )


def _reads_fit(order: Sequence[Op], initial: object) -> bool:
    value = initial
    for op in order:
        if op.kind == WRITE:
            value = op.value
        elif op.value != value:
            return False
    return True


def random_history(rng: random.Random, size: int) -> list[Op]:
    ops: list[Op] = []
    for _ in range(size):
        invoke = rng.uniform(0, 10)
        complete = invoke + rng.uniform(0.1, 4)
        if rng.random() < 0.5:
            unknown = rng.random() < 0.25
            ops.append(w(rng.choice("abc"), invoke, None if unknown else complete))
        else:
            ops.append(r(rng.choice(["a", "b", "c", None]), invoke, complete))
    return ops


def test_the_checker_agrees_with_brute_force_on_random_histories() -> None:
    rng = random.Random(20251121)
    verdicts = {True: 0, False: 0}
    for _ in range(600):
        history = random_history(rng, rng.randint(1, 6))
        expected = brute_force(history)
        assert check_register(history).ok == expected, history
        verdicts[expected] += 1
    # Both kinds were exercised, plenty of each.
    assert min(verdicts.values()) > 100, verdicts


def test_a_long_concurrent_history_is_checked_quickly() -> None:
    # Eight clients, 400 ops, each write a distinct value, a linearization point
    # drawn inside each op's interval: linearizable by construction.
    rng = random.Random(7)
    points: list[tuple[float, Op]] = []
    clock = 0.0
    for n in range(400):
        clock += rng.uniform(0, 0.3)
        invoke, complete = clock, clock + rng.uniform(0.1, 2.0)
        points.append((rng.uniform(invoke, complete), Op(WRITE, n, invoke, complete)))
    value: object = None
    history: list[Op] = []
    for _, op in sorted(points, key=lambda p: p[0]):
        if rng.random() < 0.5:
            history.append(Op(READ, value, op.invoke, op.complete))
        else:
            history.append(op)
            value = op.value
    verdict = check_register(history)
    assert verdict.ok
    assert verdict.explored < 200 * len(history)  # memoised: no exponential blow-up
