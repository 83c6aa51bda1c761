"""Through the real gRPC server: stampedes, negative caching, stale-if-error, a dead cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import grpc
import pytest

from harness.fakes.upstream import FakeUpstream
from marketcache.v1 import market_data_pb2 as pb
from tests.market_data.conftest import (
    FakeClock,
    Running,
    cache_client,
    fmp_env,
    running_market,
)
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

QUOTES = "fmp.stable.quote"


@pytest.mark.parametrize("with_cache", [True, False], ids=["cache", "no-cache"])
async def test_100_concurrent_cold_misses_make_one_upstream_call(
    upstream: FakeUpstream, request: pytest.FixtureRequest, with_cache: bool
) -> None:
    cache = cache_client(request.getfixturevalue("cache_process")) if with_cache else None
    async with running_market(fmp_env(upstream), cache=cache) as svc:
        upstream.hold()  # the first call waits, so all 100 requests overlap it
        calls = [
            asyncio.ensure_future(svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL")))
            for _ in range(100)
        ]
        merged = "market_singleflight_merged_total"
        await eventually(
            lambda: svc.sample(merged, endpoint="quote") == 99, what="99 merged requests"
        )
        upstream.release()
        replies = await asyncio.gather(*calls)
        assert upstream.calls(QUOTES, "AAPL") == 1
        assert {r.quote.price for r in replies} == {upstream.book.quote("AAPL")["price"]}
        assert all(not r.provenance.cached and r.provenance.provider == "fmp" for r in replies)
        if with_cache:
            # Afterwards the answer comes from the cache: still one upstream call.
            again = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
            assert again.provenance.cached
            assert upstream.calls(QUOTES, "AAPL") == 1


async def test_unknown_symbols_are_not_found_and_cached_negatively(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    async with running_market(fmp_env(upstream), cache=cache_client(cache_process)) as svc:
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="NOPE"))
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
            assert "unknown symbol NOPE" in (caught.value.details() or "")
        assert upstream.calls(QUOTES, "NOPE") == 1


async def test_a_stale_copy_is_served_and_marked_during_an_outage(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    wall = FakeClock(1_736_900_000.0)
    env = fmp_env(upstream, MARKET_TTL_QUOTE="60")
    async with running_market(env, cache=cache_client(cache_process), wall_clock=wall) as svc:
        first = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert not first.provenance.cached
        wall.advance(30)
        fresh_hit = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert fresh_hit.provenance.cached and not fresh_hit.provenance.stale
        assert fresh_hit.provenance.age_seconds == pytest.approx(30)
        assert upstream.calls(QUOTES) == 1

        wall.advance(95)  # past the 60 s freshness, inside the stale window
        upstream.set_fault("http503", "fmp")
        stale = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert stale.quote.price == first.quote.price
        assert stale.provenance.stale and stale.provenance.cached
        assert stale.provenance.age_seconds == pytest.approx(125)
        assert svc.sample("market_stale_served_total", endpoint="quote") == 1
        assert upstream.calls(QUOTES) > 1, "it did try the upstream first"

        upstream.clear_faults()
        recovered = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert not recovered.provenance.stale and not recovered.provenance.cached
        assert recovered.provenance.age_seconds == 0


async def test_an_outage_with_no_copy_is_unavailable_with_a_clear_message(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    async with running_market(fmp_env(upstream), cache=cache_client(cache_process)) as svc:
        upstream.set_fault("http503", "fmp")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        details = caught.value.details() or ""
        assert "fmp answered HTTP 503" in details
        assert "no cached copy" in details
        assert upstream.calls(QUOTES, "MSFT") == 3, "three attempts: retried as transient"


async def test_quotes_keep_coming_when_the_cache_process_dies(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    env = fmp_env(upstream, MARKET_CACHE_BREAKER_FAILURES="2")
    async with running_market(env, cache=cache_client(cache_process)) as svc:
        await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        cached = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert cached.provenance.cached
        cache_process.kill9()
        for symbol in ("AAPL", "MSFT", "SPY", "XLK"):
            reply = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol=symbol))
            assert reply.quote.price == upstream.book.quote(symbol)["price"]
            assert not reply.provenance.cached
        # The cache's breaker opened: later requests skip the dead cache entirely.
        assert svc.sample("market_breaker_state", provider="cache") == 2
        assert svc.sample("market_cache_requests_total", result="error") >= 1
        assert svc.sample("market_cache_requests_total", result="bypass") >= 2


async def test_no_cache_configured_answers_from_the_provider(upstream: FakeUpstream) -> None:
    async with running_market(fmp_env(upstream), cache=None) as svc:
        for _ in range(2):
            reply = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
            assert not reply.provenance.cached
        assert upstream.calls(QUOTES, "SPY") == 2
        assert svc.sample("market_cache_requests_total", result="miss") == 0


async def test_get_quotes_reports_failures_per_symbol_in_request_order(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    async with running_market(fmp_env(upstream), cache=cache_client(cache_process)) as svc:
        await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
        reply = await svc.stub.GetQuotes(
            pb.GetQuotesRequest(symbols=["xlk,SPY", "bad symbol!", "NOPE", "XLK"])
        )
        results = [(r.symbol, r.error_code) for r in reply.results]
        assert results == [
            ("XLK", ""),
            ("SPY", ""),
            ("bad symbol!", "INVALID_ARGUMENT"),
            ("NOPE", "NOT_FOUND"),
            ("XLK", ""),
        ]
        by_symbol = {r.symbol: r for r in reply.results}
        assert by_symbol["SPY"].provenance.cached, "SPY came from the batch's MGet"
        assert not by_symbol["XLK"].provenance.cached
        assert "is not a ticker symbol" in reply.results[2].error_message
        # The misses (XLK once, though asked twice, and NOPE) in one batch call;
        # SPY was cached by the GetQuote before.
        assert upstream.batch_symbols() == [["NOPE", "XLK"]], "a duplicate is fetched once"
        assert upstream.calls(QUOTES, "SPY") == 1

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=["SPY"] * 101))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "at most 100 symbols" in (caught.value.details() or "")


async def test_history_and_news_are_cached_under_the_seed_keys(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    client = cache_client(cache_process)
    env = fmp_env(upstream, NEWSAPI_KEY=upstream.api_key, NEWSAPI_BASE_URL=upstream.url)
    async with running_market(env, cache=client) as svc:
        history = await svc.stub.GetHistory(pb.GetHistoryRequest(symbol="spy"))
        assert len(history.bars) == 30 and history.symbol == "SPY"
        assert history.bars[-1].close == upstream.book.bars("SPY", 1)[0].close
        news = await svc.stub.GetNews(pb.GetNewsRequest(symbol="AAPL", date="2025-01-14", limit=3))
        assert len(news.articles) == 3 and news.provenance.provider == "newsapi"
        again = await svc.stub.GetNews(pb.GetNewsRequest(symbol="AAPL", date="2025-01-14"))
        assert again.provenance.cached and len(again.articles) == 5
        assert upstream.calls("newsapi") == 1
        await svc.stub.GetHistory(pb.GetHistoryRequest(symbol="SPY", days=30))
        assert upstream.calls("fmp.stable.history") == 1
        # The seed's key conventions, readable by any other client of the cache.
        for key in ("history:SPY:30d", "news:AAPL:2025-01-14"):
            entry = await client.get(key)
            assert isinstance(entry, dict) and "data" in entry and entry["freshFor"] > 0
        assert (await client.get("news:AAPL:2025-01-14"))["provider"] == "newsapi"  # type: ignore[index]


async def test_bad_requests_are_invalid_argument(svc_synthetic: Running) -> None:
    stub = svc_synthetic.stub
    cases: list[Awaitable[object]] = [
        stub.GetQuote(pb.GetQuoteRequest(symbol="")),
        stub.GetHistory(pb.GetHistoryRequest(symbol="AAPL", days=400)),
        stub.GetNews(pb.GetNewsRequest(symbol="AAPL", date="yesterday")),
        stub.GetNews(pb.GetNewsRequest(symbol="AAPL", limit=500)),
    ]
    for call in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def svc_synthetic() -> AsyncIterator[Running]:
    async with running_market({}, cache=None) as svc:
        yield svc


async def test_alpha_vantage_through_the_service_respects_its_rate_limit(
    upstream: FakeUpstream,
) -> None:
    env = {
        "MARKET_PROVIDER": "alphavantage",
        "ALPHAVANTAGE_API_KEY": upstream.api_key,
        "ALPHAVANTAGE_BASE_URL": upstream.url,
        # The default 5 calls a minute, and no waiting for the next token.
        "MARKET_RATE_LIMIT_MAX_WAIT": "0",
    }
    async with running_market(env, cache=None) as svc:
        symbols = ["XLB", "XLC", "XLE", "XLF", "XLI"]
        reply = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=symbols))
        assert [r.error_code for r in reply.results] == [""] * 5
        assert all(r.provenance.provider == "alphavantage" for r in reply.results)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"))
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "alphavantage rate limit reached (5/min)" in (caught.value.details() or "")
        assert upstream.calls("alphavantage") == 5
