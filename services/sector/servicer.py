"""SectorService RPC handlers: thin, they check and delegate, and map errors to statuses."""

from __future__ import annotations

from marketcache.v1 import sector_pb2, sector_pb2_grpc
from services.common.auth import AdminAuth
from services.common.errors import Context, answers_service_errors
from services.sector.batch import validated_batch
from services.sector.cache_manager import SectorCacheManager
from services.sector.catalog import BENCHMARK, BENCHMARK_NAME, SECTORS, check_symbol
from services.sector.fetcher import SectorDataFetcher


def _metadata(context: Context) -> list[tuple[str, str | bytes]]:
    return [(item[0], item[1]) for item in context.invocation_metadata() or ()]


class SectorServicer(sector_pb2_grpc.SectorServiceServicer):
    """The SectorService gRPC API over the fetcher and the sector cache."""

    def __init__(
        self,
        fetcher: SectorDataFetcher,
        cache: SectorCacheManager,
        auth: AdminAuth,
        admin_token: str | None,
    ) -> None:
        self._fetcher = fetcher
        self._cache = cache
        self._auth = auth
        # Forwarded to the cache's Clear; the cache checks it against its own ADMIN_TOKEN.
        self._admin_token = admin_token

    @answers_service_errors
    async def ListSectors(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.ListSectorsRequest, context: Context
    ) -> sector_pb2.ListSectorsResponse:
        return sector_pb2.ListSectorsResponse(
            sectors=[sector_pb2.SectorInfo(symbol=s, name=n) for s, n in SECTORS.items()],
            benchmark=sector_pb2.SectorInfo(symbol=BENCHMARK, name=BENCHMARK_NAME),
        )

    @answers_service_errors
    async def GetSectorData(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.GetSectorDataRequest, context: Context
    ) -> sector_pb2.GetSectorDataResponse:
        return await self._fetcher.sector(check_symbol(request.symbol))

    @answers_service_errors
    async def GetSectorSnapshot(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.GetSectorSnapshotRequest, context: Context
    ) -> sector_pb2.GetSectorSnapshotResponse:
        return await self._fetcher.snapshot()

    @answers_service_errors
    async def GetCacheStats(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.GetCacheStatsRequest, context: Context
    ) -> sector_pb2.GetCacheStatsResponse:
        return await self._cache.stats()

    @answers_service_errors
    async def WarmCache(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.WarmCacheRequest, context: Context
    ) -> sector_pb2.WarmCacheResponse:
        self._auth.check(_metadata(context), "WarmCache")
        return await self._fetcher.warm(list(request.symbols))

    @answers_service_errors
    async def ClearAllCaches(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.ClearAllCachesRequest, context: Context
    ) -> sector_pb2.ClearAllCachesResponse:
        self._auth.check(_metadata(context), "ClearAllCaches")
        deleted, namespaces = await self._cache.clear_all(self._admin_token)
        return sector_pb2.ClearAllCachesResponse(deleted=deleted, namespaces=namespaces)

    @answers_service_errors
    async def SetBatchSectorData(  # noqa: N802 (gRPC method name)
        self, request: sector_pb2.SetBatchSectorDataRequest, context: Context
    ) -> sector_pb2.SetBatchSectorDataResponse:
        self._auth.check(_metadata(context), "SetBatchSectorData")
        records = validated_batch(request, self._cache.now())
        written = await self._cache.put_sectors(records, int(request.ttl_seconds), strict=True)
        # The stored snapshot predates these records; the next one is built from them.
        await self._cache.drop_snapshot()
        return sector_pb2.SetBatchSectorDataResponse(written=written)
