"""The synthetic provider: deterministic, plausible, consistent between quote and history."""

from __future__ import annotations

import datetime as dt
import itertools

import grpc
import pytest

from services.market_data.nyse_calendar import NyseCalendar
from services.market_data.providers.catalog import CATALOG, SECTOR_ETFS
from services.market_data.providers.synthetic import SyntheticProvider
from services.market_data.upstream_errors import SymbolNotFoundError
from tests.market_data.conftest import TODAY


def provider(day: dt.date = TODAY) -> SyntheticProvider:
    return SyntheticProvider.for_date(day)


async def test_same_symbol_and_date_give_the_same_numbers() -> None:
    first, second = provider(), provider()
    assert await first.quote("AAPL", 1.0) == await second.quote("AAPL", 1.0)
    assert await first.history("AAPL", 30, 1.0) == await second.history("AAPL", 30, 1.0)
    assert await first.news("AAPL", TODAY, 10, 1.0) == await second.news("AAPL", TODAY, 10, 1.0)


async def test_another_date_or_symbol_gives_other_numbers() -> None:
    today = await provider().quote("AAPL", 1.0)
    tomorrow = await provider(TODAY + dt.timedelta(days=1)).quote("AAPL", 1.0)
    other = await provider().quote("MSFT", 1.0)
    assert today.price != tomorrow.price
    assert today.price != other.price


async def test_history_ends_at_the_quote_and_its_previous_close() -> None:
    synthetic = provider()
    quote = await synthetic.quote("XLK", 1.0)
    bars = await synthetic.history("XLK", 30, 1.0)
    assert len(bars) == 30
    assert bars[-1].date == TODAY.isoformat()
    assert bars[-1].close == quote.price
    assert bars[-2].close == quote.previous_close
    assert quote.change == pytest.approx(quote.price - quote.previous_close, abs=0.011)
    assert quote.change_percent == pytest.approx(quote.change / quote.previous_close * 100, 1e-3)
    # A longer window is the same path, just further back.
    longer = await synthetic.history("XLK", 60, 1.0)
    assert longer[-30:] == bars


async def test_bars_are_plausible_weekdays_oldest_first() -> None:
    bars = await provider().history("SPY", 250, 1.0)
    dates = [dt.date.fromisoformat(b.date) for b in bars]
    assert dates == sorted(dates)
    assert all(d.weekday() < 5 for d in dates)
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
    moves = [abs(b.close / a.close - 1) for a, b in itertools.pairwise(bars)]
    assert max(moves) < 0.15, "daily moves stay plausible"
    assert 300 < bars[-1].close < 900, "SPY trades near its catalog level"


async def test_a_weekend_quotes_fridays_close() -> None:
    saturday = dt.date(2025, 1, 18)
    quote = await provider(saturday).quote("AAPL", 1.0)
    friday = await provider(dt.date(2025, 1, 17)).quote("AAPL", 1.0)
    assert quote == friday


async def test_news_is_about_the_symbol_on_that_day_newest_first() -> None:
    articles = await provider().news("NVDA", TODAY, 100, 1.0)
    assert 3 <= len(articles) <= 10
    start = dt.datetime.combine(TODAY, dt.time(0, 0), dt.UTC).timestamp()
    for article in articles:
        assert start <= article.published_at < start + 86_400
        assert "NVIDIA" in article.summary
    stamps = [a.published_at for a in articles]
    assert stamps == sorted(stamps, reverse=True)
    assert len(await provider().news("NVDA", TODAY, 2, 1.0)) == 2


async def test_no_article_is_stamped_after_the_market_clocks_now() -> None:
    # Found at 01:35 UTC on 2026-12-07: an AAPL article stamped 23:38:21 that day.
    day = dt.date(2026, 12, 7)
    now = dt.datetime(2026, 12, 7, 1, 35, tzinfo=dt.UTC).timestamp()
    early = SyntheticProvider(lambda: now, NyseCalendar())
    published = [a.published_at for a in await early.news("AAPL", day, 100, 1.0)]
    assert all(stamp <= now for stamp in published), published
    # Later that day the same articles keep their stamps, and the rest have appeared.
    late = SyntheticProvider(lambda: now + 86_400, NyseCalendar())
    everything = [a.published_at for a in await late.news("AAPL", day, 100, 1.0)]
    assert any(stamp > now for stamp in everything)
    assert [s for s in everything if s <= now] == published
    # A day that has not begun has no news yet.
    assert await early.news("AAPL", day + dt.timedelta(days=1), 100, 1.0) == []


async def test_unknown_symbols_are_not_found() -> None:
    with pytest.raises(SymbolNotFoundError) as caught:
        await provider().quote("ZZZZ", 1.0)
    assert caught.value.code is grpc.StatusCode.NOT_FOUND
    assert "ZZZZ" in caught.value.message


def test_the_catalog_lists_sector_etfs_spy_and_large_stocks() -> None:
    assert set(SECTOR_ETFS) == {
        "XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY",
    }  # fmt: skip
    assert "SPY" in CATALOG
    assert len(CATALOG) >= 11 + 1 + 30
    assert all(listing.name for listing in CATALOG.values())
