"""The Alpha Vantage adapter: string-typed fields, HTTP-200 errors, rate-limit bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from harness.fakes.upstream import FakeUpstream
from services.market_data.providers.alphavantage import AlphaVantageProvider
from services.market_data.providers.http import HttpSessions, HttpUpstream
from services.market_data.upstream_errors import UpstreamError
from tests.market_data.conftest import TODAY

KEY = "av-SECRET-9191"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=KEY, today=TODAY) as upstream:
        yield upstream


@pytest.fixture
async def av(fake: FakeUpstream) -> AsyncIterator[AlphaVantageProvider]:
    sessions = HttpSessions()
    yield AlphaVantageProvider(HttpUpstream("alphavantage", fake.url, [KEY], sessions), KEY)
    await sessions.close()


async def test_global_quote_strings_become_numbers(
    fake: FakeUpstream, av: AlphaVantageProvider
) -> None:
    quote = await av.quote("IBM", 2.0)
    want = fake.book.quote("IBM")
    assert quote.symbol == "IBM"
    assert quote.name == "International Business Machines Corporation"  # from our catalog
    assert quote.price == want["price"]
    # "10. change percent": "-0.2190%"
    assert quote.change_percent == pytest.approx(want["change_percent"], abs=1e-4)
    assert quote.change == pytest.approx(want["change"])
    assert quote.previous_close == want["previous_close"]
    assert quote.volume == want["volume"]
    assert quote.timestamp > 0
    assert fake.calls("alphavantage.GLOBAL_QUOTE", "IBM") == 1


async def test_daily_series_is_sorted_and_trimmed(
    fake: FakeUpstream, av: AlphaVantageProvider
) -> None:
    bars = await av.history("SPY", 20, 2.0)
    want = fake.book.bars("SPY", 20)
    assert [(b.date, b.close, b.volume) for b in bars] == [
        (w.date, w.close, w.volume) for w in want
    ]
    longer = await av.history("SPY", 150, 2.0)  # needs outputsize=full
    assert len(longer) == 150


async def test_unknown_symbols_are_not_found(av: AlphaVantageProvider) -> None:
    # GLOBAL_QUOTE answers {"Global Quote": {}}; TIME_SERIES_DAILY "Invalid API call".
    for call in (av.quote("NOPE", 2.0), av.history("NOPE", 5, 2.0)):
        with pytest.raises(UpstreamError) as caught:
            await call
        assert caught.value.code is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "case",
    [
        ("rate_limit", grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited"),  # "Note"
        ("rate_limit_info", grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited"),  # "Information"
        ("bad_key", grpc.StatusCode.FAILED_PRECONDITION, "bad_key"),  # "Error Message"
        ("empty", grpc.StatusCode.NOT_FOUND, "not_found"),
        ("garbage", grpc.StatusCode.UNAVAILABLE, "bad_response"),
        ("http500", grpc.StatusCode.UNAVAILABLE, "unavailable"),
        ("timeout", grpc.StatusCode.UNAVAILABLE, "timeout"),
    ],
    ids=lambda case: case[0],
)
@pytest.mark.parametrize("function", ["quote", "history"])
async def test_faults_map_to_status_codes(
    fake: FakeUpstream,
    av: AlphaVantageProvider,
    function: str,
    case: tuple[str, grpc.StatusCode, str],
) -> None:
    fault, code, outcome = case
    fake.set_fault(fault, "alphavantage")
    call = av.quote("IBM", 0.3) if function == "quote" else av.history("IBM", 5, 0.3)
    with pytest.raises(UpstreamError) as caught:
        await call
    assert (caught.value.code, caught.value.outcome) == (code, outcome)
    assert KEY not in caught.value.message


def test_other_information_bodies_are_unavailable_not_a_crash(
    av: AlphaVantageProvider,
) -> None:
    premium = {
        "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may "
        "subscribe to any of the premium plans at https://www.alphavantage.co/premium/"
    }
    with pytest.raises(UpstreamError) as caught:
        av._raise_for_message(premium, "TIME_SERIES_DAILY_ADJUSTED", "IBM")
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "premium endpoint" in caught.value.message
