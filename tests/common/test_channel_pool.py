"""ChannelPool: one channel per address, opened on first use, against real gRPC servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from services.common.channel_pool import ChannelPool
from tests.conftest import grpc_server


@asynccontextmanager
async def health_server(
    status: health_pb2.HealthCheckResponse.ServingStatus.ValueType,
) -> AsyncIterator[str]:
    servicer = health_aio.HealthServicer()
    await servicer.set("", status)
    async with grpc_server(
        lambda server: health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    ) as (address, _):
        yield address


async def check(stub: health_pb2_grpc.HealthStub) -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(reply.status)


async def test_one_stub_per_address_each_reaching_its_own_server() -> None:
    async with AsyncExitStack() as stack:
        serving = await stack.enter_async_context(
            health_server(health_pb2.HealthCheckResponse.SERVING)
        )
        not_serving = await stack.enter_async_context(
            health_server(health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        pool = ChannelPool(health_pb2_grpc.HealthStub, None)
        try:
            assert pool.stub(serving) is pool.stub(serving)
            assert pool.stub(serving) is not pool.stub(not_serving)
            assert await check(pool.stub(serving)) == health_pb2.HealthCheckResponse.SERVING
            assert await check(pool.stub(not_serving)) == (
                health_pb2.HealthCheckResponse.NOT_SERVING
            )
        finally:
            await pool.close()


async def test_close_closes_the_channels_and_the_pool_opens_new_ones_after() -> None:
    async with health_server(health_pb2.HealthCheckResponse.SERVING) as address:
        pool = ChannelPool(health_pb2_grpc.HealthStub, None)
        old = pool.stub(address)
        assert await check(old) == health_pb2.HealthCheckResponse.SERVING
        await pool.close()
        with pytest.raises(grpc.aio.UsageError):  # its channel is closed
            await check(old)
        new = pool.stub(address)
        assert new is not old
        try:
            assert await check(new) == health_pb2.HealthCheckResponse.SERVING
        finally:
            await pool.close()
