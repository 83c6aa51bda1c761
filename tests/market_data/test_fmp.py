"""The FMP adapter against the fake upstream: both API generations, every fault."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from harness.fakes.upstream import FakeUpstream
from services.market_data.providers.fmp import FmpProvider
from services.market_data.providers.http import HttpSessions, HttpUpstream
from services.market_data.upstream_errors import UpstreamError
from tests.market_data.conftest import TODAY

KEY = "fmp-SECRET-4242"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=KEY, today=TODAY) as upstream:
        yield upstream


@pytest.fixture
async def sessions() -> AsyncIterator[HttpSessions]:
    sessions = HttpSessions()
    yield sessions
    await sessions.close()


def fmp(fake: FakeUpstream, sessions: HttpSessions, api: str, key: str = KEY) -> FmpProvider:
    http = HttpUpstream("fmp", fake.url, [key], sessions)
    return FmpProvider(http, key, api, lambda: TODAY)


@pytest.mark.parametrize("api", ["stable", "v3"])
async def test_quotes_parse_each_api_generation(
    fake: FakeUpstream, sessions: HttpSessions, api: str
) -> None:
    quote = await fmp(fake, sessions, api).quote("AAPL", 2.0)
    want = fake.book.quote("AAPL")
    assert quote.symbol == "AAPL" and quote.name == "Apple Inc."
    assert quote.price == want["price"]
    # stable names it changePercentage, v3 changesPercentage: both land here.
    assert quote.change_percent == want["change_percent"] != 0
    assert quote.change == want["change"]
    assert (quote.open, quote.day_high, quote.day_low) == (
        want["open"],
        want["day_high"],
        want["day_low"],
    )
    assert quote.previous_close == want["previous_close"]
    assert quote.volume == want["volume"]
    assert quote.timestamp > 0
    assert fake.calls(f"fmp.{api}.quote", "AAPL") == 1


@pytest.mark.parametrize("api", ["stable", "v3"])
async def test_history_parses_oldest_first(
    fake: FakeUpstream, sessions: HttpSessions, api: str
) -> None:
    bars = await fmp(fake, sessions, api).history("SPY", 30, 2.0)
    want = fake.book.bars("SPY", 30)
    assert [b.date for b in bars] == [w.date for w in want]
    assert [b.close for b in bars] == [w.close for w in want]
    assert bars[-1].volume == want[-1].volume
    assert fake.calls(f"fmp.{api}.history") == 1


@pytest.mark.parametrize("api", ["stable", "v3"])
async def test_an_empty_answer_means_unknown_symbol(
    fake: FakeUpstream, sessions: HttpSessions, api: str
) -> None:
    provider = fmp(fake, sessions, api)
    for call in (provider.quote("NOPE", 2.0), provider.history("NOPE", 5, 2.0)):
        with pytest.raises(UpstreamError) as caught:
            await call
        assert caught.value.code is grpc.StatusCode.NOT_FOUND
        assert "NOPE" in caught.value.message


@pytest.mark.parametrize(
    "case",
    [
        ("http500", grpc.StatusCode.UNAVAILABLE, "unavailable", True),
        ("http503", grpc.StatusCode.UNAVAILABLE, "unavailable", True),
        ("timeout", grpc.StatusCode.UNAVAILABLE, "timeout", True),
        ("garbage", grpc.StatusCode.UNAVAILABLE, "bad_response", False),
        ("rate_limit", grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited", False),
        ("bad_key", grpc.StatusCode.FAILED_PRECONDITION, "bad_key", False),
        ("empty", grpc.StatusCode.NOT_FOUND, "not_found", False),
    ],
    ids=lambda case: case[0],
)
@pytest.mark.parametrize("api", ["stable", "v3"])
async def test_faults_map_to_status_codes(
    fake: FakeUpstream,
    sessions: HttpSessions,
    api: str,
    case: tuple[str, grpc.StatusCode, str, bool],
) -> None:
    fault, code, outcome, transient = case
    fake.set_fault(fault, "fmp")
    with pytest.raises(UpstreamError) as caught:
        await fmp(fake, sessions, api).quote("AAPL", 0.3)
    error = caught.value
    assert (error.code, error.outcome, error.transient) == (code, outcome, transient)
    assert KEY not in error.message


async def test_a_wrong_key_is_failed_precondition_naming_the_variable(
    fake: FakeUpstream, sessions: HttpSessions
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await fmp(fake, sessions, "stable", key="wrong-key-777").quote("AAPL", 2.0)
    assert caught.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "FMP_API_KEY" in caught.value.message
    assert "wrong-key-777" not in caught.value.message


async def test_an_unreachable_host_is_unavailable_without_the_url(
    sessions: HttpSessions,
) -> None:
    fake = FakeUpstream(api_key=KEY)
    await fake.start()
    await fake.stop()  # the port is now closed
    with pytest.raises(UpstreamError) as caught:
        await fmp(fake, sessions, "stable").quote("AAPL", 2.0)
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert caught.value.transient
    assert KEY not in caught.value.message and "apikey" not in caught.value.message
