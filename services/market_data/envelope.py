"""What MarketDataService stores in the cache: the data plus when and where it came from.

The cache never returns an expired entry, yet stale-if-error needs an old copy.
So an entry lives in the cache for its freshness plus a stale window, and the
envelope says when it was fetched and how long it is fresh for.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.json_value import JSON

# Provenance.refresh: what this read started in the background.
REFRESH_AHEAD = "ahead"  # an early refresh of a still-fresh copy (XFetch)
REFRESH_REVALIDATE = "revalidate"  # a refresh of a stale copy served at once (SWR)


@dataclass(frozen=True)
class Provenance:
    """Where an answer came from (the proto's Provenance)."""

    provider: str
    cached: bool
    age_seconds: float
    stale: bool
    # The freshness the answer was given, the session then, and why.
    fresh_for: float = 0.0
    session: str = ""
    freshness_reason: str = ""
    refresh: str = ""


@dataclass(frozen=True)
class Served:
    """An answer's data and its provenance."""

    data: JSON
    provenance: Provenance


@dataclass(frozen=True)
class Envelope:
    """A cached answer, or a cached "not found" when `not_found` holds its message."""

    data: JSON
    fetched_at: float
    fresh_for: float
    provider: str
    not_found: str | None = None
    # The session when it was fetched and why it got `fresh_for` (see market_session).
    session: str = ""
    reason: str = ""
    # How long the upstream took: XFetch's delta, the cost of recomputing.
    fetch_seconds: float = 0.0

    def age(self, now: float) -> float:
        return max(now - self.fetched_at, 0.0)

    def is_fresh(self, now: float) -> bool:
        return self.age(now) < self.fresh_for

    def time_left(self, now: float) -> float:
        """Seconds of freshness left (negative once past it)."""
        return self.fresh_for - self.age(now)

    def provenance(self, now: float, *, cached: bool, stale: bool = False) -> Provenance:
        return Provenance(
            self.provider,
            cached,
            self.age(now) if cached else 0.0,
            stale,
            fresh_for=self.fresh_for,
            session=self.session,
            freshness_reason=self.reason,
        )

    def served(self, now: float, *, stale: bool = False) -> Served:
        return Served(self.data, self.provenance(now, cached=True, stale=stale))

    def to_json(self) -> JSON:
        obj: dict[str, JSON] = {
            "fetchedAt": self.fetched_at,
            "freshFor": self.fresh_for,
            "provider": self.provider,
            "session": self.session,
            "reason": self.reason,
            "fetchSeconds": self.fetch_seconds,
        }
        if self.not_found is not None:
            obj["notFound"] = self.not_found
        else:
            obj["data"] = self.data
        return obj

    @classmethod
    def from_json(cls, obj: JSON) -> Envelope | None:
        """The envelope in a cached value; None when it is not one (written by someone else)."""
        if not isinstance(obj, dict):
            return None
        fetched = obj.get("fetchedAt")
        fresh = obj.get("freshFor")
        if not isinstance(fetched, int | float) or not isinstance(fresh, int | float):
            return None
        not_found = obj.get("notFound")
        if not_found is None and "data" not in obj:
            return None
        took = obj.get("fetchSeconds")
        return cls(
            data=obj.get("data"),
            fetched_at=float(fetched),
            fresh_for=float(fresh),
            provider=str(obj.get("provider") or ""),
            not_found=None if not_found is None else str(not_found),
            session=str(obj.get("session") or ""),
            reason=str(obj.get("reason") or ""),
            fetch_seconds=float(took) if isinstance(took, int | float) else 0.0,
        )
