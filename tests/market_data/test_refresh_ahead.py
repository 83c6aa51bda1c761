"""Refresh ahead of expiry (XFetch) and stale-while-revalidate, through the real gRPC server.

No assertion here is on a duration: "did not wait for the upstream" is read
from the provenance (a read answered from the cache says cached=true; one
that waited for the upstream says cached=false), or shown by holding the fake
upstream's replies while the reads are answered.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from harness.fakes.upstream import FakeUpstream
from marketcache.v1 import market_data_pb2 as pb
from services.market_data.refresh_ahead import xfetch_due
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
BACKGROUND = "market_background_refreshes_total"


async def refresh_finished(svc: Running) -> None:
    """Wait until the second upstream call (the background refresh) has succeeded."""
    ok = {"provider": "fmp", "endpoint": "quote", "outcome": "ok"}
    await eventually(
        lambda: svc.sample("market_upstream_requests_total", **ok) == 2,
        what="the refresh to finish",
    )


def test_xfetch_recomputes_when_minus_delta_beta_log_rand_reaches_the_time_left() -> None:
    # -0.1 * ln(1 - r) >= 0.05  <=>  r >= 1 - e^-0.5 (about 0.393)
    edge = 1 - math.exp(-0.5)
    assert xfetch_due(0.05, delta=0.1, beta=1.0, rand=lambda: edge + 1e-9)
    assert not xfetch_due(0.05, delta=0.1, beta=1.0, rand=lambda: edge - 1e-3)
    # A larger beta refreshes earlier; with more time left it takes a luckier draw.
    assert xfetch_due(0.05, delta=0.1, beta=2.0, rand=lambda: 0.3)
    assert not xfetch_due(5.0, delta=0.1, beta=1.0, rand=lambda: 0.99)
    # beta 0 (off) and an unknown cost never refresh early; expiry always does.
    assert not xfetch_due(0.01, delta=0.1, beta=0.0, rand=lambda: 0.999)
    assert not xfetch_due(0.01, delta=0.0, beta=1.0, rand=lambda: 0.999)
    assert xfetch_due(0.0, delta=0.1, beta=1.0, rand=lambda: 0.0)


async def test_hot_key_is_refreshed_ahead_so_no_reader_waits_after_the_first(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    upstream.set_delay_ms(100)
    ttl, readers, rounds = 1, 4, 40  # each reader: a read every 50 ms for about 2 s
    env = fmp_env(upstream, MARKET_TTL_QUOTE=str(ttl))
    async with running_market(env, cache=cache_client(cache_process)) as svc:
        first = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        assert not first.provenance.cached
        started = time.monotonic()

        async def reader() -> list[pb.Provenance]:
            seen = []
            for _ in range(rounds):
                reply = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
                seen.append(reply.provenance)
                await asyncio.sleep(0.05)
            return seen

        reads = [
            p for seen in await asyncio.gather(*(reader() for _ in range(readers))) for p in seen
        ]
        elapsed = time.monotonic() - started
        waited = [p for p in reads if not p.cached]
        assert waited == [], f"{len(waited)} of {len(reads)} reads waited for the upstream"
        ahead = sum(1 for p in reads if p.refresh == "ahead")
        assert ahead >= 1
        assert svc.sample(BACKGROUND, endpoint="quote", kind="ahead") == ahead
        # About once per TTL, not once per reader: elapsed/ttl TTLs went by.
        calls = upstream.calls(QUOTES, "AAPL") - 1
        periods = elapsed / ttl
        assert 1 <= calls <= 2 * periods + 2, f"{calls} refreshes over {periods:.1f} TTLs"
        assert calls < len(reads) / readers


async def test_a_refresh_ahead_runs_once_in_the_background(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    # The copy cost at least 50 ms to fetch and has 10 ms left: with beta 100,
    # XFetch's test (-delta * beta * ln(rand) >= 0.01) fails only for rand above
    # e^-0.002, so in practice every read meets it, and the first one that does
    # starts the refresh.
    upstream.set_delay_ms(50)
    wall = FakeClock(1_736_950_000.0)
    env = fmp_env(upstream, MARKET_TTL_QUOTE="60", MARKET_REFRESH_AHEAD_BETA="100")
    async with running_market(env, cache=cache_client(cache_process), wall_clock=wall) as svc:
        first = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT"))
        wall.advance(59.99)
        upstream.hold()  # the refresh cannot finish: every read below overlaps it
        replies = await asyncio.gather(
            *(svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT")) for _ in range(20))
        )
        assert all(r.provenance.cached and not r.provenance.stale for r in replies)
        assert all(r.quote == first.quote for r in replies)
        assert sum(1 for r in replies if r.provenance.refresh == "ahead") == 1
        await eventually(lambda: upstream.calls(QUOTES, "MSFT") == 2, what="the refresh call")
        upstream.release()
        await refresh_finished(svc)
        assert upstream.calls(QUOTES, "MSFT") == 2
        assert svc.sample(BACKGROUND, endpoint="quote", kind="ahead") == 1


async def test_stale_while_revalidate_answers_at_once_marked_stale_with_one_refresh(
    upstream: FakeUpstream, cache_process: ServiceProcess
) -> None:
    wall = FakeClock(1_736_950_000.0)
    env = fmp_env(upstream, MARKET_TTL_QUOTE="60", MARKET_STALE_WHILE_REVALIDATE="30")
    async with running_market(env, cache=cache_client(cache_process), wall_clock=wall) as svc:
        await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
        wall.advance(75)  # past the 60 s freshness, inside the 30 s window
        upstream.hold()  # the refresh hangs: the answers below cannot have waited for it
        replies = [await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY")) for _ in range(5)]
        assert all(r.provenance.cached and r.provenance.stale for r in replies)
        assert [r.provenance.refresh for r in replies] == ["revalidate", "", "", "", ""]
        assert all(r.provenance.age_seconds == pytest.approx(75) for r in replies)
        await eventually(lambda: upstream.calls(QUOTES, "SPY") == 2, what="one refresh call")
        upstream.release()
        await refresh_finished(svc)

        async def refreshed() -> bool:
            reply = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
            return reply.provenance.cached and not reply.provenance.stale

        deadline = time.monotonic() + 10
        while not await refreshed():
            assert time.monotonic() < deadline, "the refreshed copy never reached the cache"
            await asyncio.sleep(0.01)
        assert upstream.calls(QUOTES, "SPY") == 2, "exactly one refresh"
        assert svc.sample(BACKGROUND, endpoint="quote", kind="revalidate") == 1

        # Past freshness plus the window, a reader waits for the upstream as before.
        wall.advance(95)
        late = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
        assert not late.provenance.cached and not late.provenance.stale
        assert upstream.calls(QUOTES, "SPY") == 3
        assert svc.sample(BACKGROUND, endpoint="quote", kind="revalidate") == 1
