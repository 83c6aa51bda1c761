"""GetQuotes on FMP: what the cache lacks in one batch-quote call, then cached per symbol."""

from __future__ import annotations

import pytest

from harness.fakes.upstream import FakeUpstream
from marketcache.v1 import market_data_pb2 as pb
from services.market_data.providers.fmp import FmpProvider
from services.market_data.providers.http import HttpSessions, HttpUpstream
from tests.market_data.conftest import TODAY, cache_client, fmp_env, running_market
from tests.support.processes import ServiceProcess

TEN = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM", "IBM", "SPY"]


async def test_ten_uncached_symbols_take_one_upstream_call_and_are_cached_per_symbol(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    async with running_market(fmp_env(upstream), cache=cache_client(cache_process)) as svc:
        reply = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=TEN))
        assert upstream.calls() == 1
        assert upstream.batch_symbols() == [sorted(TEN)]
        assert [r.symbol for r in reply.results] == TEN
        for result in reply.results:
            assert not result.error_code
            assert result.quote.price == upstream.book.quote(result.symbol)["price"]
            assert not result.provenance.cached and result.provenance.provider == "fmp"

        # Each symbol was cached on its own: single quotes and a wider batch reuse them.
        single = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="NVDA"))
        assert single.provenance.cached
        wider = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=[*TEN, "QQQ", "XLK"]))
        assert [r.provenance.cached for r in wider.results] == [True] * 10 + [False, False]
        assert upstream.batch_symbols() == [sorted(TEN), ["QQQ", "XLK"]]
        assert upstream.calls() == 2


async def test_unknown_symbols_in_a_batch_are_not_found_and_cached_negatively(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    async with running_market(fmp_env(upstream), cache=cache_client(cache_process)) as svc:
        for _ in range(2):
            reply = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=["AAPL", "NOPE"]))
            codes = [(r.symbol, r.error_code) for r in reply.results]
            assert codes == [("AAPL", ""), ("NOPE", "NOT_FOUND")]
            assert "unknown symbol NOPE" in reply.results[1].error_message
        assert upstream.batch_symbols() == [["AAPL", "NOPE"]]


async def test_the_v3_api_batches_on_its_comma_path(upstream: FakeUpstream) -> None:
    async with running_market(fmp_env(upstream, FMP_API="v3"), cache=None) as svc:
        reply = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=["MSFT", "AAPL"]))
    assert upstream.batch_symbols("fmp.v3.batch-quote") == [["AAPL", "MSFT"]]
    assert upstream.calls() == 1
    prices = {r.symbol: r.quote.price for r in reply.results}
    assert prices == {s: upstream.book.quote(s)["price"] for s in ("MSFT", "AAPL")}


async def test_a_batch_failure_is_reported_per_symbol(upstream: FakeUpstream) -> None:
    upstream.set_fault("http500", "fmp")
    env = fmp_env(upstream, MARKET_RETRY_ATTEMPTS="1")
    async with running_market(env, cache=None) as svc:
        reply = await svc.stub.GetQuotes(pb.GetQuotesRequest(symbols=["AAPL", "MSFT"]))
    assert [r.error_code for r in reply.results] == ["UNAVAILABLE", "UNAVAILABLE"]
    assert upstream.calls() == 1


@pytest.mark.parametrize(("size", "calls"), [(4, 3), (10, 1)])
async def test_more_symbols_than_a_batch_holds_are_chunked(
    upstream: FakeUpstream, size: int, calls: int
) -> None:
    sessions = HttpSessions()
    try:
        http = HttpUpstream("fmp", upstream.url, (upstream.api_key,), sessions)
        fmp = FmpProvider(http, upstream.api_key, "stable", lambda: TODAY, batch_size=size)
        quotes = await fmp.quotes(TEN, 5.0)
    finally:
        await sessions.close()
    assert sorted(quotes) == sorted(TEN)
    assert upstream.calls("fmp.stable.batch-quote") == calls
    assert sorted(s for chunk in upstream.batch_symbols() for s in chunk) == sorted(TEN)
