"""Building the configured providers (MARKET_PROVIDER for prices; NewsAPI when keyed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from services.market_data.config import MarketDataSettings
from services.market_data.providers.alphavantage import AlphaVantageProvider
from services.market_data.providers.base import NewsProvider, PriceProvider
from services.market_data.providers.fmp import FmpProvider
from services.market_data.providers.http import HttpSessions, HttpUpstream
from services.market_data.providers.newsapi import NewsApiProvider
from services.market_data.providers.synthetic import SyntheticProvider


@dataclass(frozen=True)
class Providers:
    """Where prices and news come from, and the HTTP sessions to close at the end."""

    prices: PriceProvider
    news: NewsProvider
    sessions: HttpSessions


def build_providers(
    settings: MarketDataSettings,
    today: Callable[[], dt.date],
    sessions: HttpSessions,
    synthetic: SyntheticProvider,
) -> Providers:
    """Prices from MARKET_PROVIDER; news from NewsAPI when NEWSAPI_KEY is set, else synthetic."""
    secrets = settings.secrets
    prices: PriceProvider
    if settings.provider == "fmp":
        assert settings.fmp_api_key is not None  # checked by the settings
        http = HttpUpstream("fmp", settings.fmp_base_url, secrets, sessions)
        prices = FmpProvider(http, settings.fmp_api_key, settings.fmp_api, today)
    elif settings.provider == "alphavantage":
        assert settings.alphavantage_api_key is not None
        http = HttpUpstream("alphavantage", settings.alphavantage_base_url, secrets, sessions)
        prices = AlphaVantageProvider(http, settings.alphavantage_api_key)
    else:
        prices = synthetic
    news: NewsProvider = synthetic
    if settings.newsapi_key:
        http = HttpUpstream("newsapi", settings.newsapi_base_url, secrets, sessions)
        news = NewsApiProvider(http, settings.newsapi_key)
    return Providers(prices=prices, news=news, sessions=sessions)
