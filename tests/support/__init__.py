"""Shared test support: real subprocesses, PostgreSQL databases, ports."""
