"""Adversarial tests: crash loops, soak, fuzzing, upstream faults and resource limits."""
