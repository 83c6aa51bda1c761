"""Settings: defaults from the seed, and bad values failing at start naming the variable."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.config import ConfigError, Env
from services.market_data.config import MarketDataSettings


def settings(**env: str) -> MarketDataSettings:
    return MarketDataSettings.from_env(Env(env))


def test_defaults() -> None:
    s = settings()
    assert s.provider == "synthetic"
    assert s.server.listen == "127.0.0.1:50052"
    assert s.server.metrics_listen == "127.0.0.1:9102"
    assert (s.ttl.quote, s.ttl.history, s.ttl.news, s.ttl.negative) == (60, 3600, 21600, 300)
    assert s.ttl.stale == 86_400
    assert s.fmp_base_url == "https://financialmodelingprep.com"
    assert s.fmp_api == "stable"
    assert s.alphavantage_base_url == "https://www.alphavantage.co"
    assert s.newsapi_base_url == "https://newsapi.org"
    assert s.provider_rate.per_minute == 0
    assert s.synthetic_date is None


def test_alpha_vantage_defaults_to_five_calls_a_minute() -> None:
    s = settings(MARKET_PROVIDER="alphavantage", ALPHAVANTAGE_API_KEY="k")
    assert (s.provider_rate.per_minute, s.provider_rate.burst) == (5, 5)


def test_overrides() -> None:
    s = settings(
        MARKET_PROVIDER="FMP",
        FMP_API_KEY="secret-key",
        FMP_API="v3",
        FMP_BASE_URL="http://127.0.0.1:8000/",
        MARKET_TTL_QUOTE="5",
        MARKET_TTL_HISTORY="604800",
        MARKET_SYNTHETIC_DATE="2025-01-15",
        MARKET_RATE_LIMIT_PER_MINUTE="30",
        MARKET_BREAKER_FAILURES="2",
    )
    assert s.provider == "fmp" and s.fmp_api == "v3"
    assert s.fmp_base_url == "http://127.0.0.1:8000"
    assert (s.ttl.quote, s.ttl.history) == (5, 604_800)
    assert s.synthetic_date == dt.date(2025, 1, 15)
    assert s.provider_rate.per_minute == 30 and s.breaker.failures == 2
    assert "secret-key" not in repr(s), "keys stay out of repr (and so out of logs)"


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({"MARKET_PROVIDER": "fmp"}, "FMP_API_KEY", "required when MARKET_PROVIDER=fmp"),
        (
            {"MARKET_PROVIDER": "alphavantage"},
            "ALPHAVANTAGE_API_KEY",
            "required when MARKET_PROVIDER=alphavantage",
        ),
        ({"MARKET_PROVIDER": "yahoo"}, "MARKET_PROVIDER", "synthetic, fmp, alphavantage"),
        ({"FMP_API": "v4"}, "FMP_API", "stable, v3"),
        ({"FMP_BASE_URL": "ftp://x"}, "FMP_BASE_URL", "http(s) URL"),
        ({"FMP_BASE_URL": "https://x.test/api/v3"}, "FMP_BASE_URL", "scheme and host only"),
        ({"NEWSAPI_BASE_URL": "https://n.test/?apiKey=s3cr3t"}, "NEWSAPI_BASE_URL", "host only"),
        ({"MARKET_TTL_QUOTE": "0"}, "MARKET_TTL_QUOTE", "at least 1"),
        ({"MARKET_TTL_NEWS": "soon"}, "MARKET_TTL_NEWS", "integer"),
        ({"MARKET_SYNTHETIC_DATE": "15.01.2025"}, "MARKET_SYNTHETIC_DATE", "YYYY-MM-DD"),
        ({"MARKET_DATA_LISTEN": "nowhere"}, "MARKET_DATA_LISTEN", "host:port"),
        ({"MARKET_NOW": "next tuesday"}, "MARKET_NOW", "ISO-8601"),
        ({"MARKET_NOW": "2026-13-01T10:00"}, "MARKET_NOW", "2026-11-27T10:30:00-05:00"),
        (
            {"MARKET_NOW": "2026-11-27T10:00:00Z", "MARKET_SYNTHETIC_DATE": "2026-11-27"},
            "MARKET_SYNTHETIC_DATE",
            "not both",
        ),
        ({"MARKET_TTL_CLOSED_MAX": "0"}, "MARKET_TTL_CLOSED_MAX", "at least 1"),
        ({"MARKET_STALE_WHILE_REVALIDATE": "-5"}, "MARKET_STALE_WHILE_REVALIDATE", "at least 0"),
        ({"MARKET_REFRESH_AHEAD_BETA": "high"}, "MARKET_REFRESH_AHEAD_BETA", "number"),
        ({"MARKET_RATE_LIMIT_PER_MINUTE": "-1"}, "MARKET_RATE_LIMIT_PER_MINUTE", "at least 0"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], variable: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    message = str(caught.value)
    assert message.startswith(f"{variable}:")
    assert hint in message
    assert "s3cr3t" not in message
