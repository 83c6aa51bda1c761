"""Ownership metrics: leases, members and forwarding (fenced writes are in stats.py)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

# The data RPCs a node may forward to a prefix's owner.
FORWARDED_METHODS = ("Get", "Set", "Delete", "MGet", "MSet", "Clear")


class OwnershipMetrics:
    """The cache_lease*, cache_leases_held, cache_members_alive and forwarding series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.leases_held = Gauge(
            "cache_leases_held", "Prefix leases this node holds now.", registry=registry
        )
        self.members_alive = Gauge(
            "cache_members_alive",
            "Cache nodes alive (heartbeat unexpired) as this node last saw them.",
            registry=registry,
        )
        self.acquisitions = Counter(
            "cache_lease_acquisitions_total",
            "Prefix leases this node acquired (new, expired, released or taken over).",
            registry=registry,
        )
        self.losses = Counter(
            "cache_lease_losses_total",
            "Prefix leases this node lost without releasing them (expired, taken over).",
            registry=registry,
        )
        self.takeovers = Counter(
            "cache_lease_takeovers_total",
            "Acquisitions of a prefix last held by another process.",
            registry=registry,
        )
        self.releases = Counter(
            "cache_lease_releases_total",
            "Prefix leases this node gave up (handover to a new member, or shutdown).",
            registry=registry,
        )
        self.forwarded = Counter(
            "cache_forwarded_requests_total",
            "Requests (or parts of MGet/MSet) this node forwarded to the prefix's owner.",
            ["method"],
            registry=registry,
        )
        for method in FORWARDED_METHODS:
            self.forwarded.labels(method)

    def watch(self, held: Callable[[], int], alive: Callable[[], int]) -> None:
        """Report `held()` and `alive()` at every scrape."""
        self.leases_held.set_function(held)
        self.members_alive.set_function(alive)
