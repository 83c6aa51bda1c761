"""The shared bootstrap: health transitions, reflection, metrics with go-grpc-prometheus names."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.grpc_metrics import code_label
from services.common.server import GrpcProcess, ServerOptions

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


def _process(registry: CollectorRegistry) -> GrpcProcess:
    options = ServerOptions(name="probe", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0")
    return GrpcProcess(options, registry, [HEALTH], lambda _server: None)


async def _scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels}")


def test_code_labels_are_go_spelling() -> None:
    assert code_label(grpc.StatusCode.OK) == "OK"
    assert code_label(grpc.StatusCode.INVALID_ARGUMENT) == "InvalidArgument"
    assert code_label(grpc.StatusCode.DEADLINE_EXCEEDED) == "DeadlineExceeded"
    assert code_label(grpc.StatusCode.NOT_FOUND) == "NotFound"


async def test_health_is_not_serving_until_ready_and_after_stop(
    registry: CollectorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready.json"
    monkeypatch.setenv("MARKETCACHE_READY_FILE", str(ready))
    process = _process(registry)
    await process.start()
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not ready.exists()
            await process.set_serving(True)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=HEALTH.full_name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            info = json.loads(ready.read_text())
            assert info["grpc"] == process.address
            assert info["metrics_port"] == process.metrics_port
    finally:
        await process.stop()
    assert (await process.health.Check(health_pb2.HealthCheckRequest(), None)).status == (
        health_pb2.HealthCheckResponse.NOT_SERVING
    )


async def test_reflection_lists_the_services(registry: CollectorRegistry) -> None:
    process = _process(registry)
    await process.start()
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            names: set[str] = set()
            async for reply in stub.ServerReflectionInfo(iter([request])):
                names |= {s.name for s in reply.list_services_response.service}
        assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    finally:
        await process.stop()


async def test_metrics_count_each_rpc_by_code_and_start_at_zero(
    registry: CollectorRegistry,
) -> None:
    process = _process(registry)
    await process.start()
    await process.set_serving(True)
    try:
        labels = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
        before = await _scrape(process.metrics_port)
        # Every code of every method exists at zero before any traffic.
        assert _sample(before, "grpc_server_handled_total", grpc_code="NotFound", **labels) == 0
        assert _sample(before, "grpc_server_handled_total", grpc_code="OK", **labels) == 0
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(3):
                await stub.Check(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        # context.abort sends the status before the handler's wrapper has counted it:
        # the client may scrape first, so wait (with a deadline) for the count.
        deadline = asyncio.get_running_loop().time() + 10.0
        while True:
            after = await _scrape(process.metrics_port)
            counted = _sample(after, "grpc_server_handling_seconds_count", **labels)
            if counted >= 4 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        assert _sample(after, "grpc_server_handled_total", grpc_code="OK", **labels) == 3
        assert _sample(after, "grpc_server_handled_total", grpc_code="NotFound", **labels) == 1
        assert _sample(after, "grpc_server_started_total", **labels) == 4
        assert _sample(after, "grpc_server_handling_seconds_count", **labels) == 4
    finally:
        await process.stop()
