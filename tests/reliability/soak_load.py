"""The soak's mixed load: REST through the gateway and gRPC clients, each call checked."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import grpc

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc, sector_pb2, sector_pb2_grpc
from services.client import CacheClient

SECTORS = ("XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY")
STOCKS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM")
# A bounded keyspace: after warm-up the cache holds all of it, so memory should stop growing.
KEYS = tuple(f"soak{p}:k{i}" for p in range(4) for i in range(500))


@dataclass
class LoadStats:
    """Calls per kind, and every failure (the soak allows none)."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class Load:
    """REST and gRPC workers that run until `stop` is set; `pause` lets them drain."""

    def __init__(
        self,
        *,
        gateway_url: str,
        cache_addr: str,
        market_addr: str,
        sector_addr: str,
        token: str,
        seed: int = 7,
    ) -> None:
        self.gateway_url = gateway_url
        self.token = token
        self.cache = CacheClient(cache_addr, timeout=15.0)
        self._market_channel = grpc.aio.insecure_channel(market_addr)
        self._sector_channel = grpc.aio.insecure_channel(sector_addr)
        self.market = market_data_pb2_grpc.MarketDataServiceStub(self._market_channel)
        self.sectors = sector_pb2_grpc.SectorServiceStub(self._sector_channel)
        self.stats = LoadStats()
        self.running = asyncio.Event()
        self.stop = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._seed = seed
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Load:
        # As many pooled connections as REST workers, so idle connections do not vary.
        connector = aiohttp.TCPConnector(limit=8)
        timeout = aiohttp.ClientTimeout(total=30)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        await self.cache.close()
        await self._market_channel.close(None)
        await self._sector_channel.close(None)

    async def run(self, workers: int) -> None:
        """REST and gRPC workers, half each, until `stop`."""
        tasks = [self._worker(i, rest=i % 2 == 0) for i in range(workers)]
        await asyncio.gather(*tasks)

    async def drained(self) -> None:
        """Wait until no call is in flight (clear `running` first, so none starts)."""
        await self._idle.wait()

    async def _worker(self, index: int, *, rest: bool) -> None:
        rng = random.Random(self._seed * 100 + index)
        ops = self._rest_ops() if rest else self._grpc_ops()
        names, weights = zip(*[(name, weight) for name, weight, _ in ops], strict=True)
        table = {name: fn for name, _, fn in ops}
        while not self.stop:
            await self.running.wait()
            if self.stop:
                return
            name = rng.choices(names, weights)[0]
            self.in_flight += 1
            self._idle.clear()
            try:
                await table[name](rng)
                self.stats.calls[name] += 1
            except Exception as exc:  # every failure is a finding; keep the load going
                self.stats.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self._idle.set()

    # -- REST ----------------------------------------------------------------------------

    async def _http(self, method: str, path: str, body: object = None, admin: bool = False) -> None:
        assert self._session is not None
        headers = {"Authorization": f"Bearer {self.token}"} if admin else {}
        async with self._session.request(
            method, self.gateway_url + path, json=body, headers=headers
        ) as reply:
            payload = await reply.read()
            if reply.status != 200:
                raise AssertionError(f"{method} {path}: {reply.status} {payload[:200]!r}")

    def _rest_ops(self) -> list[tuple[str, int, Callable[[random.Random], Awaitable[None]]]]:
        def key(rng: random.Random) -> str:
            return rng.choice(KEYS)

        return [
            ("rest snapshot", 2, lambda r: self._http("GET", "/api/v1/sectors/snapshot")),
            ("rest sector", 4, lambda r: self._http("GET", f"/api/v1/sectors/{r.choice(SECTORS)}")),
            (
                "rest quote",
                4,
                lambda r: self._http("GET", f"/api/v1/market/quotes/{r.choice(STOCKS)}"),
            ),
            (
                "rest quotes",
                2,
                lambda r: self._http(
                    "GET", "/api/v1/market/quotes?symbols=" + ",".join(r.sample(STOCKS, 3))
                ),
            ),
            (
                "rest history",
                2,
                lambda r: self._http("GET", f"/api/v1/market/history/{r.choice(STOCKS)}?days=20"),
            ),
            (
                "rest news",
                1,
                lambda r: self._http("GET", f"/api/v1/market/news/{r.choice(STOCKS)}"),
            ),
            (
                "rest put",
                4,
                lambda r: self._http(
                    "PUT",
                    f"/api/v1/cache/keys/{key(r)}",
                    {"value": {"n": r.random()}, "ttlSeconds": 3600},
                    admin=True,
                ),
            ),
            ("rest get", 6, lambda r: self._http("GET", f"/api/v1/cache/keys/{key(r)}")),
            (
                "rest mget",
                2,
                lambda r: self._http(
                    "POST", "/api/v1/cache/mget", {"keys": [key(r) for _ in range(10)]}
                ),
            ),
            ("rest health", 1, lambda r: self._http("GET", "/api/v1/cache/health")),
        ]

    # -- gRPC ----------------------------------------------------------------------------

    def _grpc_ops(self) -> list[tuple[str, int, Callable[[random.Random], Awaitable[None]]]]:
        async def set_(r: random.Random) -> None:
            await self.cache.set(r.choice(KEYS), {"n": r.random(), "tags": ["a", "b"]}, 3600)

        async def get(r: random.Random) -> None:
            await self.cache.get(r.choice(KEYS))

        async def mget(r: random.Random) -> None:
            await self.cache.mget([r.choice(KEYS) for _ in range(20)])

        async def mset(r: random.Random) -> None:
            await self.cache.mset([(r.choice(KEYS), r.random(), 3600) for _ in range(10)])

        async def delete(r: random.Random) -> None:
            await self.cache.delete(r.choice(KEYS))

        async def quote(r: random.Random) -> None:
            request = market_data_pb2.GetQuoteRequest(symbol=r.choice(STOCKS))
            await self.market.GetQuote(request, timeout=15)

        async def sector(r: random.Random) -> None:
            request = sector_pb2.GetSectorDataRequest(symbol=r.choice(SECTORS))
            await self.sectors.GetSectorData(request, timeout=15)

        return [
            ("grpc set", 4, set_),
            ("grpc get", 8, get),
            ("grpc mget", 2, mget),
            ("grpc mset", 2, mset),
            ("grpc delete", 1, delete),
            ("grpc quote", 3, quote),
            ("grpc sector", 3, sector),
        ]
