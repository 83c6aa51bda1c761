"""A linearizability checker for a read/write register (Wing & Gong's search, with the
memoisation of Lowe and of Knossos' "linear" checker).

A history is the operations clients saw, each with its invoke and complete times
(one clock: the test process's monotonic clock). A write whose outcome is unknown
(it timed out or failed: it may or may not have taken effect, at any moment after
its invoke) has `complete=None`; the search may place it anywhere after its invoke
or leave it out. A read whose outcome is unknown constrains nothing: leave it out.

The history is linearizable when some total order of the operations (with the
unknown writes that took effect) respects real time (an operation that completed
before another was invoked comes first) and makes every read return the value
of the latest write before it (or `initial` if none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

READ: Literal["read"] = "read"
WRITE: Literal["write"] = "write"


@dataclass(frozen=True)
class Op:
    """One register operation as a client saw it."""

    kind: Literal["read", "write"]
    # The value written, or the value the read returned (None: the key was absent).
    value: object
    invoke: float
    # None: the outcome is unknown (only meaningful for writes).
    complete: float | None
    client: int = 0

    @property
    def ends(self) -> float:
        return math.inf if self.complete is None else self.complete


@dataclass(frozen=True)
class Verdict:
    """Whether a history is linearizable, and if not, where the search got stuck."""

    ok: bool
    # Operations the longest linearization found could not extend with (earliest first).
    stuck: tuple[Op, ...] = ()
    explored: int = 0

    def __bool__(self) -> bool:
        return self.ok


def check_register(history: Sequence[Op], initial: object = None) -> Verdict:
    """Whether `history`, the operations on one register, is linearizable."""
    reads = [op for op in history if op.kind == READ and op.complete is not None]
    observed = {_key(op.value) for op in reads}
    # An unknown write nobody read may as well not have happened: leaving it out
    # cannot turn a valid order invalid (no read sits between it and the next
    # write), and it keeps the search from trying every subset of them.
    writes = [
        op
        for op in history
        if op.kind == WRITE and (op.complete is not None or _key(op.value) in observed)
    ]
    ops = sorted([*reads, *writes], key=lambda op: op.invoke)
    count = len(ops)
    required = sum(1 << i for i, op in enumerate(ops) if op.complete is not None)
    start = (0, _key(initial))
    seen = {start}
    stack = [start]
    deepest = 0
    while stack:
        done, value = stack.pop()
        if done & required == required:
            return Verdict(True, explored=len(seen))
        if done.bit_count() > deepest.bit_count():
            deepest = done
        # The earliest completion among operations not yet placed: whatever was
        # invoked after it cannot come next.
        horizon = min((ops[i].ends for i in range(count) if not done >> i & 1), default=math.inf)
        for i in range(count):
            if done >> i & 1:
                continue
            op = ops[i]
            if op.invoke >= horizon:
                break  # sorted by invoke: none of the rest can come next either
            if op.kind == READ:
                if _key(op.value) != value:
                    continue
                after = (done | 1 << i, value)
            else:
                after = (done | 1 << i, _key(op.value))
            if after not in seen:
                seen.add(after)
                stack.append(after)
    pending = [ops[i] for i in range(count) if not deepest >> i & 1 and ops[i].complete is not None]
    return Verdict(False, tuple(sorted(pending, key=lambda op: op.ends)[:3]), len(seen))


def _key(value: object) -> object:
    """A hashable stand-in for a JSON value."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _key(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(_key(v) for v in value))
    return value
