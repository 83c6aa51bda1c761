"""How long each kind of market data stays fresh, in one place (the seed's TTL table)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# The cache refuses TTLs above 30 days unless configured otherwise.
MAX_CACHE_TTL = 30 * DAY


@dataclass(frozen=True)
class TtlPolicy:
    """Freshness per kind of data, plus how long past it a copy is kept for stale-if-error."""

    # Real-time prices: 60 s (seed).
    quote: int = MINUTE
    # A rolling N-day window ends with the latest daily bar, which moves every
    # trading day, so it is "daily data" (1 h), not "historical data" (7 days):
    # a week-old window would miss the last five sessions.
    history: int = HOUR
    # News articles: 6-12 h (seed); content does not change once published.
    news: int = 6 * HOUR
    # Unknown symbols are remembered this long, so typos do not reach the provider.
    negative: int = 5 * MINUTE
    # After its freshness ends a copy stays in the cache this long, served only
    # when the upstream fails (stale-if-error).
    stale: int = DAY

    def cache_ttl(self, fresh_for: int, stale_at_least: int = 0) -> int:
        """The cache TTL of an envelope fresh for `fresh_for` seconds."""
        return min(fresh_for + max(self.stale, stale_at_least), MAX_CACHE_TTL)

    @classmethod
    def from_env(cls, env: Env) -> TtlPolicy:
        """Read MARKET_TTL_* and MARKET_STALE_SECONDS (seconds)."""
        week = 7 * DAY
        return cls(
            quote=env.integer("MARKET_TTL_QUOTE", cls.quote, minimum=1, maximum=week),
            history=env.integer("MARKET_TTL_HISTORY", cls.history, minimum=1, maximum=week),
            news=env.integer("MARKET_TTL_NEWS", cls.news, minimum=1, maximum=week),
            negative=env.integer("MARKET_TTL_NEGATIVE", cls.negative, minimum=1, maximum=DAY),
            stale=env.integer("MARKET_STALE_SECONDS", cls.stale, minimum=0, maximum=7 * DAY),
        )
