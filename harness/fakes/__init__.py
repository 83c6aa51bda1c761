"""Fakes of external services that speak their real wire formats (for tests and benchmarks)."""
