"""A Jepsen-style history of register operations on cache keys, and its checker.

Every write carries a value no other write carries, so what a key holds after
a crash names the operation that put it there. The checker knows, per key,
when each operation was issued and (if ever) acknowledged, and accepts a final
state only if some real-time order of the operations could end in it:

- an acknowledged operation W was applied before its acknowledgement, so any
  operation acknowledged before W was issued is overwritten by W (or later);
- an unacknowledged operation (in flight at the kill) may or may not have
  been applied, at any point after it was issued.

So the final state must come from an unacknowledged operation, or from an
acknowledged one whose acknowledgement is no earlier than the latest issue of
any acknowledged operation. Anything else is an acknowledged write lost (or
an older value resurrected). Measured times only err towards leniency: issue
times are taken before sending and acknowledgement times after the reply.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# What a deleted or never-written key holds.
ABSENT = "<absent>"


@dataclass
class Op:
    """One operation's effect on one key: the state it leaves (a value or ABSENT)."""

    op_id: int
    kind: str
    state: Any
    issued: float
    acked: float | None = None


@dataclass
class Violation:
    """A key whose final state no legal order of its operations explains."""

    key: str
    observed: Any
    allowed: list[Any]
    newest_acked: Op | None


@dataclass
class Batch:
    """An MSet of fresh keys: after a crash all of them exist or none do."""

    batch_id: int
    keys: list[str]
    issued: float
    acked: float | None = None


@dataclass
class History:
    """Operations per key, and MSet batches over fresh keys."""

    ops: dict[str, list[Op]] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self._ids)

    def begin(self, op_id: int, kind: str, states: Mapping[str, Any]) -> list[Op]:
        """Record operation `op_id` as issued now, leaving `states[key]` on each key."""
        now = time.monotonic()
        begun = [Op(op_id, kind, state, now) for state in states.values()]
        for key, op in zip(states, begun, strict=True):
            self.ops.setdefault(key, []).append(op)
        return begun

    @staticmethod
    def ack(ops: Iterable[Op]) -> None:
        """Record the operation's reply: it is durable now."""
        now = time.monotonic()
        for op in ops:
            op.acked = now

    def begin_batch(self, batch_id: int, keys: list[str]) -> Batch:
        batch = Batch(batch_id, keys, time.monotonic())
        self.batches.append(batch)
        return batch

    @property
    def acknowledged(self) -> int:
        """Acknowledged operations on the register keys (an MSet counts once per key)."""
        return sum(1 for ops in self.ops.values() for op in ops if op.acked is not None)

    @property
    def unacknowledged(self) -> int:
        return sum(1 for ops in self.ops.values() for op in ops if op.acked is None)

    def check(self, observed: Mapping[str, Any]) -> list[Violation]:
        """Every key whose observed final state is not allowed by its history."""
        violations = []
        for key, ops in self.ops.items():
            allowed = allowed_states(ops)
            state = observed.get(key, ABSENT)
            if state not in allowed:
                acked = [op for op in ops if op.acked is not None]
                newest = max(acked, key=lambda op: op.acked or 0.0) if acked else None
                violations.append(Violation(key, state, allowed, newest))
        return violations

    def check_batches(self, present: Mapping[int, int]) -> tuple[list[str], int, int]:
        """Half-applied or lost batches; also how many were applied and how many skipped.

        `present` maps a batch id to how many of its keys exist now.
        """
        problems = []
        applied = skipped = 0
        for batch in self.batches:
            count = present.get(batch.batch_id, 0)
            if count not in (0, len(batch.keys)):
                problems.append(
                    f"batch {batch.batch_id}: {count} of {len(batch.keys)} keys present "
                    "(half-applied MSet)"
                )
            elif count == 0 and batch.acked is not None:
                problems.append(f"batch {batch.batch_id}: acknowledged but no key present")
            elif count:
                applied += 1
            else:
                skipped += 1
        return problems, applied, skipped

    def settle(self, observed: Mapping[str, Any]) -> None:
        """Start the next round from what was observed (a known, acknowledged state)."""
        now = time.monotonic()
        self.ops = {
            key: [Op(0, "observed", observed.get(key, ABSENT), now, now)] for key in self.ops
        }
        self.batches = []


def allowed_states(ops: list[Op]) -> list[Any]:
    """The final states a legal order of `ops` (on one key) can end in."""
    acked = [op for op in ops if op.acked is not None]
    if not acked:
        return [ABSENT, *(op.state for op in ops)]
    latest_issue = max(op.issued for op in acked)
    states = [op.state for op in acked if op.acked is not None and op.acked >= latest_issue]
    states += [op.state for op in ops if op.acked is None]
    return states
