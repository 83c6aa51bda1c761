"""API keys never leak into logs, errors or metrics; metrics carry no symbols."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import aiohttp
import grpc
import pytest

from harness.fakes.upstream import FakeUpstream
from marketcache.v1 import market_data_pb2 as pb
from tests.market_data.conftest import TODAY, fmp_env, running_market

SECRET = "sk-LEAK-CHECK-0123456789"


async def test_api_keys_never_appear_in_logs_errors_or_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    # The fake expects our secret, so calls reach every code path, faults included.
    async with FakeUpstream(api_key=SECRET, today=TODAY) as upstream:
        env = fmp_env(
            upstream,
            NEWSAPI_KEY=SECRET,
            NEWSAPI_BASE_URL=upstream.url,
            MARKET_UPSTREAM_TIMEOUT="0.3",
            MARKET_BREAKER_FAILURES="1000",
        )
        async with running_market(env, cache=None) as svc:
            await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
            for fault in ("http500", "timeout", "garbage", "rate_limit", "bad_key"):
                upstream.set_fault(fault)
                calls: list[Awaitable[object]] = [
                    svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT")),
                    svc.stub.GetHistory(pb.GetHistoryRequest(symbol="MSFT")),
                    svc.stub.GetNews(pb.GetNewsRequest(symbol="MSFT")),
                ]
                for call in calls:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call
                    texts.append(caught.value.details() or "")
                    texts.append(str(caught.value.trailing_metadata()))
                upstream.clear_faults()
            metrics_url = f"http://127.0.0.1:{svc.app.process.metrics_port}/metrics"
            async with aiohttp.ClientSession() as session, session.get(metrics_url) as resp:
                exposition = await resp.text()
    # A wrong key configured: the provider's refusal must not echo it either.
    async with FakeUpstream(api_key="the-right-key", today=TODAY) as upstream:
        env = {**fmp_env(upstream), "FMP_API_KEY": SECRET}
        async with running_market(env, cache=None) as svc:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
            assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            texts.append(caught.value.details() or "")
    assert "retrying fmp" in caplog.text, "the retry path was logged"
    assert any("FMP_API_KEY" in text for text in texts)
    for text in [*texts, caplog.text, exposition]:
        assert SECRET not in text
        assert "apikey=" not in text.lower().replace("apikey=***", "")
    assert "market_upstream_requests_total" in exposition


async def test_metrics_carry_no_symbol_labels(upstream: FakeUpstream) -> None:
    async with running_market(fmp_env(upstream), cache=None) as svc:
        for symbol in ("AAPL", "XLRE"):
            await svc.stub.GetQuote(pb.GetQuoteRequest(symbol=symbol))
        with pytest.raises(grpc.aio.AioRpcError):
            await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="NOPE"))
        url = f"http://127.0.0.1:{svc.app.process.metrics_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            exposition = await resp.text()
    for name in (
        "market_upstream_requests_total",
        "market_upstream_seconds",
        "market_breaker_state",
        "market_breaker_transitions_total",
        "market_singleflight_merged_total",
        "market_stale_served_total",
        "market_cache_requests_total",
        "market_rate_limiter_wait_seconds",
    ):
        assert name in exposition, name
    assert (
        'market_upstream_requests_total{endpoint="quote",outcome="ok",provider="fmp"} 2.0'
        in exposition
    )
    assert (
        'market_upstream_requests_total{endpoint="quote",outcome="not_found",provider="fmp"} 1.0'
        in exposition
    )
    for symbol in ("AAPL", "XLRE", "NOPE"):
        assert symbol not in exposition
