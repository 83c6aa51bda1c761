"""A checker of the near cache's bounded-staleness promise over a recorded history.

Each key has one sequential writer, so its writes are totally ordered. A read
that began at `began` may return the value of the last write acknowledged at or
before `began - bound`, or of any later write (acknowledged or not), but never
an older one: that value was overwritten by a write acknowledged more than the
bound before the read began. A value is also never returned by a read that
began after its TTL ran out (counted from the write's acknowledgement).
Deletes and Clears are writes of None; None is also every key's first value.

Sending order is not applying order for a write whose outcome is unknown: a
request the network held (a partition healed before TCP gave up) can reach the
server after its sender gave up and after the sender's next write was
acknowledged, and overwrite it. Linearizability allows that (the write may take
effect at any moment after its invoke) and so do the lost-write check and the
near cache, which serves what the server holds. Such a value is allowed when a
linearizable read (`Seen`, or a near-cache read the server answered) shows it was
current, and no write sent after that
read was acknowledged more than the bound before the near-cache read began: a
value the server never held again is still caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Write:
    """One write of `key` to `value` (None: delete or Clear), sent and, if so, acknowledged."""

    key: str
    value: object
    sent: float
    acked: float | None
    ttl: float | None = None


@dataclass(frozen=True)
class Seen:
    """A linearizable (server) read of `key` that returned `value` by `ended`."""

    key: str
    value: object
    ended: float


@dataclass(frozen=True)
class Read:
    """One read of `key` that began at `began` and returned `value`; `from_server`
    when the near cache could not serve it (by `ended`, the server's read is then a
    linearizable one)."""

    key: str
    value: object
    began: float
    from_server: bool = False
    ended: float = 0.0


def violations(
    writes: Iterable[Write], reads: Iterable[Read], bound: float, seen: Iterable[Seen] = ()
) -> list[str]:
    """Every read that breaks the promise, described; empty when the history is fine.
    `seen`: the linearizable reads (with the near-cache reads the server answered),
    evidence of unknown writes that took effect late."""
    by_key: dict[str, list[Write]] = {}
    for w in sorted(writes, key=lambda w: w.sent):
        by_key.setdefault(w.key, []).append(w)
    seen_by_key: dict[str, list[Seen]] = {}
    for s in seen:
        seen_by_key.setdefault(s.key, []).append(s)
    reads = list(reads)
    for r in reads:
        if r.from_server:
            seen_by_key.setdefault(r.key, []).append(Seen(r.key, r.value, r.ended))
    found: list[str] = []
    for r in reads:
        history = by_key.get(r.key, [])
        # The newest write acknowledged at least `bound` before the read began.
        floor = -1
        for i, w in enumerate(history):
            if w.acked is not None and w.acked + bound < r.began:
                floor = i
        allowed = [i for i, w in enumerate(history) if w.value == r.value and i >= floor]
        if r.value is None and floor == -1:
            allowed.append(-1)
        if not allowed and _landed_late(r, history, seen_by_key.get(r.key, []), bound):
            continue
        if not allowed:
            overwritten_by = history[floor] if floor >= 0 else None
            returned = [w for w in history if w.value == r.value]
            found.append(
                f"read of {r.key} at {r.began:.3f} returned {r.value!r} (written by "
                f"{returned!r}), overwritten by {overwritten_by!r} acknowledged more than "
                f"{bound}s before"
            )
            continue
        if r.value is not None:
            expired = [
                i
                for i in allowed
                if history[i].ttl is not None
                and history[i].acked is not None
                and history[i].acked + history[i].ttl < r.began  # type: ignore[operator]
            ]
            if expired == allowed:
                found.append(f"read of {r.key} at {r.began:.3f} returned {r.value!r} past its TTL")
    return found


def _landed_late(r: Read, history: list[Write], seen: list[Seen], bound: float) -> bool:
    """Whether an unknown write of `r.value` may have taken effect after the writes
    that seem to overwrite it: a server read saw the value current (by `ended`), and
    no write sent after that was acknowledged more than `bound` before `r` began."""
    unknown = [w.sent for w in history if w.value == r.value and w.acked is None]
    for ended in (s.ended for s in seen if s.value == r.value):
        if not any(sent <= ended for sent in unknown):
            continue
        if not any(
            w.acked is not None and w.sent > ended and w.acked + bound < r.began for w in history
        ):
            return True
    return False


def load(paths: Iterable[Path]) -> tuple[list[Write], list[Read]]:
    """The writes and reads recorded in JSON Lines files (tests.near_cache.workload)."""
    writes: list[Write] = []
    reads: list[Read] = []
    for path in paths:
        for line in path.read_text().splitlines():
            item = json.loads(line)
            if item["op"] == "write":
                writes.append(
                    Write(item["key"], item["value"], item["sent"], item["acked"], item.get("ttl"))
                )
            elif item["op"] == "read":
                reads.append(Read(item["key"], item["value"], item["began"]))
    return writes, reads
