"""Fixtures of the CLI tests: the cache tests' in-process server on 127.0.0.1:0."""

from tests.cache.conftest import server

__all__ = ["server"]
