"""How big and how long each workload runs, per mode (smoke, quick, full)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every knob that differs between a smoke test, a quick run and a full run."""

    mode: str
    # Repetitions of each timed workload; every figure is their median.
    reps: int
    # Seconds each repetition of a key-value workload runs for.
    seconds: float
    # Seconds of untimed warm-up before the first repetition of a workload.
    warmup_seconds: float
    # Distinct keys preloaded for the Get, MGet and mixed workloads.
    hot_keys: int
    # Keys loaded for the memory and restart workloads.
    memory_keys: int
    # Restarts timed with memory_keys keys on disk.
    restarts: int
    # Snapshot requests per sample set: cold samples (caches cleared before each), warm calls.
    snapshot_cold: int
    snapshot_warm: int
    # Concurrent cold requests in one stampede; stampedes run (each on a fresh symbol).
    stampede_requests: int
    stampedes: int

    @property
    def memory_note(self) -> str:
        """How the memory figure was loaded, for the table."""
        return f"{self.memory_keys:,} keys of 200-byte values"


SMOKE = Sizes(
    mode="smoke",
    reps=1,
    seconds=0.05,
    warmup_seconds=0.02,
    hot_keys=200,
    memory_keys=2_000,
    restarts=1,
    snapshot_cold=1,
    snapshot_warm=5,
    stampede_requests=20,
    stampedes=1,
)

QUICK = Sizes(
    mode="quick",
    reps=3,
    seconds=0.4,
    warmup_seconds=0.2,
    hot_keys=10_000,
    memory_keys=100_000,
    restarts=2,
    snapshot_cold=3,
    snapshot_warm=50,
    stampede_requests=100,
    stampedes=3,
)

FULL = Sizes(
    mode="full",
    reps=7,
    seconds=1.2,
    warmup_seconds=0.5,
    hot_keys=10_000,
    memory_keys=1_000_000,
    restarts=3,
    snapshot_cold=5,
    snapshot_warm=200,
    stampede_requests=100,
    stampedes=5,
)

BY_MODE = {s.mode: s for s in (SMOKE, QUICK, FULL)}
