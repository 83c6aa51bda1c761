"""Sector data and snapshots: from the cache when it has them, else built from market data."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping, Sequence

from marketcache.v1 import market_data_pb2, sector_pb2
from services.common.singleflight import Group
from services.market_data.market_session import Freshness
from services.sector import analytics
from services.sector.cache_manager import SectorCacheManager
from services.sector.catalog import ALL_SYMBOLS, BENCHMARK, SECTORS, check_symbol, name_of
from services.sector.market import MarketDataClient, session_of
from services.sector.metrics import SectorMetrics

SectorMap = dict[str, sector_pb2.SectorData]


class SectorDataFetcher:
    """Cache-aside over MarketDataService for one sector or the whole snapshot (the seed's)."""

    def __init__(
        self,
        market: MarketDataClient,
        cache: SectorCacheManager,
        metrics: SectorMetrics,
        *,
        concurrency: int = 12,
    ) -> None:
        self._market = market
        self._cache = cache
        self._metrics = metrics
        self._concurrency = concurrency
        self._sector_flight: Group[SectorMap] = Group()
        self._snapshot_flight: Group[sector_pb2.GetSectorSnapshotResponse] = Group()

    async def sector(self, symbol: str) -> sector_pb2.GetSectorDataResponse:
        """One sector (or SPY): cached, else built with SPY for the relative strength."""
        hit = (await self._cache.sectors([symbol])).get(symbol)
        if hit is not None:
            return sector_pb2.GetSectorDataResponse(
                sector=hit.value, cache=self._info(hit.stored_at, hit.freshness)
            )
        built = await self._sector_flight.do(symbol, lambda: self.build([symbol]))
        return sector_pb2.GetSectorDataResponse(
            sector=built[symbol], cache=self._info(None, self._cache.data_freshness())
        )

    async def snapshot(self) -> sector_pb2.GetSectorSnapshotResponse:
        """Every sector, SPY and the ranking: the cached snapshot, else one shared build."""
        reply = sector_pb2.GetSectorSnapshotResponse()
        hit = await self._cache.snapshot()
        if hit is not None:
            reply.CopyFrom(hit.value)
            reply.cache.CopyFrom(self._info(hit.stored_at, hit.freshness))
            return reply
        # Concurrent cold requests share one build (one GetQuotes, one history per symbol).
        # A request arriving just after a build finished starts another; that rebuild
        # reads the freshly stored sectors, so it costs one MGet, not a fetch.
        built = await self._snapshot_flight.do("latest", self._build_snapshot)
        reply.CopyFrom(built)  # a copy: every waiter shares `built`
        reply.cache.CopyFrom(self._info(None, self._cache.snapshot_freshness()))
        return reply

    async def warm(self, requested: Sequence[str]) -> sector_pb2.WarmCacheResponse:
        """Fetch fresh data and store it: the given symbols, or every sector plus the snapshot."""
        symbols = [check_symbol(s, f"symbols[{i}]") for i, s in enumerate(requested)]
        self._cache.require("warm the cache")
        full = not symbols
        records = await self.build(symbols or ALL_SYMBOLS, store=False)
        await self._cache.put_sectors(list(records.values()), strict=True)
        if full:
            await self._cache.put_snapshot(self.assemble(records), strict=True)
        return sector_pb2.WarmCacheResponse(
            warmed=len(records), symbols=list(records), snapshot=full
        )

    async def build(self, symbols: Sequence[str], *, store: bool = True) -> SectorMap:
        """Build sector data from market data: one GetQuotes, a history per digest miss."""
        wanted = list(dict.fromkeys([*symbols, BENCHMARK]))
        quotes = await self._market.quotes(wanted)
        sessions = {s: session_of(quotes[s]) for s in wanted}
        digests = await self._cache.digests(sessions)
        missing = [s for s in wanted if s not in digests]
        if missing:
            fetched = await self._fetch_digests({s: sessions[s] for s in missing})
            await self._cache.put_digests(fetched)
            digests.update({d.symbol: d for d in fetched})
        benchmark = _compose(quotes[BENCHMARK], digests[BENCHMARK], None)
        records = {
            s: benchmark if s == BENCHMARK else _compose(quotes[s], digests[s], benchmark)
            for s in wanted
        }
        if store:
            await self._cache.put_sectors(list(records.values()))
        return records

    def assemble(
        self, records: Mapping[str, sector_pb2.SectorData]
    ) -> sector_pb2.GetSectorSnapshotResponse:
        """A snapshot of the given sector records: ranked by 1-month performance."""
        ranking = analytics.rank({s: records[s].performance.month_1 for s in SECTORS})
        reply = sector_pb2.GetSectorSnapshotResponse(
            ranking=ranking.order, top_performers=ranking.top, bottom_performers=ranking.bottom
        )
        for symbol in SECTORS:
            entry = reply.sectors.add()
            entry.CopyFrom(records[symbol])
            entry.rank = ranking.rank_of(symbol)
        reply.benchmark.CopyFrom(records[BENCHMARK])
        reply.benchmark.rank = 0
        reply.as_of.FromNanoseconds(int(self._cache.now() * 1e9))
        return reply

    async def _build_snapshot(self) -> sector_pb2.GetSectorSnapshotResponse:
        start = time.perf_counter()
        cached = await self._cache.sectors(ALL_SYMBOLS)
        records = {s: c.value for s, c in cached.items()}
        missing = [s for s in ALL_SYMBOLS if s not in records]
        if missing:
            records.update(await self.build(missing))
        snapshot = self.assemble(records)
        await self._cache.put_snapshot(snapshot)
        self._metrics.snapshot_build.observe(time.perf_counter() - start)
        return snapshot

    async def _fetch_digests(
        self, sessions: Mapping[str, dt.date]
    ) -> list[analytics.HistoryDigest]:
        limit = asyncio.Semaphore(self._concurrency)

        async def one(symbol: str) -> analytics.HistoryDigest:
            async with limit:
                closes = await self._market.closes(symbol, analytics.HISTORY_DAYS)
            return analytics.digest(symbol, closes, sessions[symbol])

        # TaskGroup: the first failure cancels the other fetches instead of orphaning them.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(s)) for s in sessions]
        except ExceptionGroup as failed:
            # The caller maps a ServiceError to its status; a group would be UNKNOWN.
            raise failed.exceptions[0] from None
        return [t.result() for t in tasks]

    def _info(self, stored_at: float | None, fresh: Freshness | None) -> sector_pb2.CacheInfo:
        age = 0.0 if stored_at is None else max(0.0, self._cache.now() - stored_at)
        info = sector_pb2.CacheInfo(
            cached=stored_at is not None, age_seconds=round(age, 3), enabled=self._cache.available
        )
        # With caching off nothing is kept, so there is no freshness to report.
        if fresh is not None and self._cache.enabled:
            info.fresh_for_seconds = fresh.seconds
            info.session = fresh.session.value
            info.freshness_reason = fresh.reason
        return info


def _compose(
    quote: market_data_pb2.Quote,
    history: analytics.HistoryDigest,
    benchmark: sector_pb2.SectorData | None,
) -> sector_pb2.SectorData:
    perf = analytics.performance(quote.price, quote.change_percent, history)
    if benchmark is None:
        strength = dict.fromkeys(analytics.PERIODS, 0.0)
    else:
        base = {p: getattr(benchmark.performance, p) for p in analytics.PERIODS}
        strength = analytics.relative_strength(perf, base)
    symbol = history.symbol
    data = sector_pb2.SectorData(
        symbol=symbol,
        name=name_of(symbol),
        price=quote.price,
        change=quote.change,
        change_percent=quote.change_percent,
        volume=quote.volume,
        performance=sector_pb2.Performance(**perf),
        relative_strength=sector_pb2.Performance(**strength),
        trend=analytics.trend(quote.price, history, perf["month_1"]),
    )
    if quote.HasField("timestamp"):
        data.as_of.CopyFrom(quote.timestamp)
    return data
