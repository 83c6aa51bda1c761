"""The cache's tables: entries, the lease of each prefix, and the live members."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

entries = Table(
    "cache_entries",
    metadata,
    Column("key", Text, primary_key=True),
    Column("prefix", Text, nullable=False),
    # The serialized google.protobuf.Value, served back without a JSON round trip.
    Column("value", LargeBinary, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_cache_entries_prefix", "prefix"),
    Index("ix_cache_entries_expires_at", "expires_at"),
)

# One row per prefix ever served; never deleted, so an epoch is never reused.
leases = Table(
    "cache_leases",
    metadata,
    Column("prefix", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("owner_addr", Text, nullable=False),
    # The owning process incarnation (a fresh random token per start): a restarted
    # process with the same CACHE_NODE_ID does not inherit its predecessor's leases.
    Column("owner_token", Text, nullable=False),
    # The fencing token: +1 on every acquisition from an expired, released or other lease.
    Column("epoch", BigInteger, nullable=False),
    # Database-clock seconds; 0 once released.
    Column("expires_at", Double, nullable=False),
    Column("acquired_at", Double, nullable=False),
)

# One row per process incarnation, refreshed by its heartbeat.
members = Table(
    "cache_members",
    metadata,
    Column("token", Text, primary_key=True),
    Column("node_id", Text, nullable=False),
    Column("address", Text, nullable=False),
    # Where the process runs, so a peer on the same host can tell it has exited.
    Column("pid", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
)
