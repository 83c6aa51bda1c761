"""gRPC fuzzing: every RPC of every service answers only documented codes, and stays well.

Real processes (cache, market_data on the synthetic provider, sector) get
hypothesis-generated requests as wire bytes: keys of every shape and length,
JSON values of every type, depth and size, TTLs and counts at the extremes,
batches around their limits, unknown fields, values nested past protobuf's
limit, invalid UTF-8 and random bytes; with no, a wrong or the right admin
token. Derandomized and bounded, so every run sends the same cases.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from marketcache.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    sector_pb2,
    sector_pb2_grpc,
)
from services.common.json_value import from_value, to_value
from tests.reliability.grpc_strategies import (
    CACHE_RPCS,
    MARKET_RPCS,
    SECTOR_RPCS,
    RpcCase,
    payloads,
)
from tests.reliability.records import nothing_lost, record
from tests.support.processes import ServiceProcess, running

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
TOKEN = "fuzz-admin-token"
TIMEOUT = 30.0
C = grpc.StatusCode
# What the contract lets each service answer. Never INTERNAL, UNKNOWN or a hang.
DOCUMENTED = frozenset(
    {
        C.OK,
        C.INVALID_ARGUMENT,
        C.NOT_FOUND,
        C.RESOURCE_EXHAUSTED,
        C.UNAUTHENTICATED,
        C.PERMISSION_DENIED,
    }
)
ALLOWED = {
    "CacheService": DOCUMENTED,
    # Upstream trouble is UNAVAILABLE; a provider refusing our key is FAILED_PRECONDITION.
    "MarketDataService": DOCUMENTED | {C.UNAVAILABLE, C.FAILED_PRECONDITION},
    # Admin cache operations need a cache: FAILED_PRECONDITION when it is off.
    "SectorService": DOCUMENTED | {C.UNAVAILABLE, C.FAILED_PRECONDITION},
}
METADATA = st.sampled_from(
    [
        (),
        (("authorization", f"Bearer {TOKEN}"),),
        (("authorization", f"Bearer {TOKEN}"),),
        (("authorization", "Bearer not-the-token"),),
        (("authorization", f"Basic {TOKEN}"),),
    ]
)


@dataclass
class Stack:
    cache: ServiceProcess
    market: ServiceProcess
    sector: ServiceProcess

    def process(self, service: str) -> ServiceProcess:
        return {
            "CacheService": self.cache,
            "MarketDataService": self.market,
            "SectorService": self.sector,
        }[service]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("grpc-fuzz")
    cache_env = {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{work / 'cache.db'}",
        "ADMIN_TOKEN": TOKEN,
    }
    with running("cache", cache_env, work / "cache") as cache:
        market_env = {
            "MARKET_DATA_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
            "MARKET_PROVIDER": "synthetic",
            "MARKET_SYNTHETIC_DATE": "2025-01-15",
            "CACHE_ADDR": cache.grpc_address,
            "CACHE_CLIENT_TIMEOUT": "5",
        }
        with running("market_data", market_env, work / "market") as market:
            sector_env = {
                "SECTOR_LISTEN": "127.0.0.1:0",
                "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
                "CACHE_ADDR": cache.grpc_address,
                "MARKET_DATA_ADDR": market.grpc_address,
                "ADMIN_TOKEN": TOKEN,
                "SECTOR_CACHE_TIMEOUT": "5",
            }
            with running("sector", sector_env, work / "sector") as sector:
                yield Stack(cache, market, sector)


def _still_well(stack: Stack, service: str, channel: grpc.Channel, probe: int) -> None:
    """The server answers SERVING and a well-formed request correctly."""
    proc = stack.process(service)
    assert proc.popen.poll() is None, f"{service} exited:\n{proc.log()[-3000:]}"
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=TIMEOUT
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    if service == "CacheService":
        cache = cache_pb2_grpc.CacheServiceStub(channel)
        value = {"probe": probe, "text": "still well"}
        cache.Set(
            cache_pb2.SetRequest(key="wellness:probe", value=to_value(value)), timeout=TIMEOUT
        )
        got = cache.Get(cache_pb2.GetRequest(key="wellness:probe"), timeout=TIMEOUT)
        assert got.found and from_value(got.value) == value
    elif service == "MarketDataService":
        market = market_data_pb2_grpc.MarketDataServiceStub(channel)
        quote = market.GetQuote(market_data_pb2.GetQuoteRequest(symbol="AAPL"), timeout=TIMEOUT)
        assert quote.quote.symbol == "AAPL" and quote.quote.price > 0
    else:
        sector = sector_pb2_grpc.SectorServiceStub(channel)
        data = sector.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"), timeout=TIMEOUT)
        assert data.sector.symbol == "XLK" and data.sector.price > 0


def _fuzz_rpc(
    channel: grpc.Channel, case: RpcCase, seen: Counter[str], failures: list[str]
) -> None:
    call: Callable[..., object] = channel.unary_unary(
        case.path,
        request_serializer=lambda data: data,
        response_deserializer=case.response.FromString,
    )
    allowed = ALLOWED[case.service]

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(payload=payloads(case), metadata=METADATA)
    def check(payload: bytes, metadata: Sequence[tuple[str, str]]) -> None:
        try:
            call(payload, timeout=TIMEOUT, metadata=metadata)
            code = C.OK
        except grpc.RpcError as exc:
            code = exc.code()
            if code not in allowed:
                details = exc.details()
                failures.append(f"{case.method}: {code.name} for {payload[:120]!r}: {details}")
        seen[code.name] += 1

    check()


def _fuzz_service(stack: Stack, service: str, cases: Sequence[RpcCase]) -> None:
    proc = stack.process(service)
    seen_by_rpc: dict[str, Counter[str]] = {}
    failures: list[str] = []
    with grpc.insecure_channel(proc.grpc_address) as channel:
        for probe, case in enumerate(cases):
            seen = seen_by_rpc.setdefault(case.method, Counter())
            try:
                _fuzz_rpc(channel, case, seen, failures)
            except Exception as exc:  # one RPC's crash must not hide the others'
                failures.append(f"{case.method}: {type(exc).__name__}: {exc}")
            try:
                _still_well(stack, service, channel, probe)
            except (AssertionError, grpc.RpcError) as exc:
                failures.append(f"after fuzzing {case.method}, not well: {exc}")
    # Anything the server had to log as unexpected is a bug even if the code was right.
    unexpected = [
        line
        for line in proc.log().splitlines()
        if "Traceback" in line or "Unexpected [" in line or "unhandled" in line.lower()
    ]
    total: Counter[str] = Counter()
    for seen in seen_by_rpc.values():
        total.update(seen)
    record(
        f"gRPC fuzzing ({service})",
        tried=(
            "hypothesis requests as wire bytes for every RPC: keys of every shape and length, "
            "JSON values of every type/depth/size, NaN and infinities, TTLs and counts at the "
            "extremes, batches around the limit, unknown fields, Values nested past protobuf's "
            "limit, invalid UTF-8, random bytes; no/wrong/right admin token; then a "
            "well-formed request must still be answered correctly"
        ),
        cases=f"{sum(total.values())} requests over {len(cases)} RPCs ({EXAMPLES} per RPC)",
        lost=nothing_lost(len(failures) + len(unexpected), "undocumented answers or crashes"),
        figures={
            "answers by code": dict(sorted(total.items())),
            "answers by RPC": {m: dict(sorted(c.items())) for m, c in seen_by_rpc.items()},
            "failures": failures[:20],
            "unexpected log lines": unexpected[:10],
        },
        passed=not failures and not unexpected,
    )
    assert not failures, "\n".join(failures[:40])
    assert not unexpected, "\n".join(unexpected[:20]) + "\n" + proc.log()[-4000:]
    # Both the happy path and refusals were exercised.
    assert total["OK"] > 0 and sum(total.values()) > total["OK"], total


def test_fuzz_cache_service(stack: Stack) -> None:
    _fuzz_service(stack, "CacheService", CACHE_RPCS)


def test_fuzz_market_data_service(stack: Stack) -> None:
    _fuzz_service(stack, "MarketDataService", MARKET_RPCS)


def test_fuzz_sector_service(stack: Stack) -> None:
    _fuzz_service(stack, "SectorService", SECTOR_RPCS)


def test_a_well_formed_request_with_unknown_fields_is_answered_as_without(stack: Stack) -> None:
    """Unknown fields are skipped, not refused: a newer client still works."""
    from tests.reliability.wire import LEN, VARINT, field_bytes

    request = cache_pb2.SetRequest(key="fz:unknown", value=to_value({"a": [1, 2]}), ttl_seconds=60)
    extra = field_bytes(99, VARINT, 7) + field_bytes(12345, LEN, b"\x00\x01future")
    with grpc.insecure_channel(stack.cache.grpc_address) as channel:
        raw = channel.unary_unary(
            "/marketcache.v1.CacheService/Set",
            request_serializer=lambda data: data,
            response_deserializer=cache_pb2.SetResponse.FromString,
        )
        reply = raw(request.SerializeToString() + extra, timeout=TIMEOUT)
        assert reply.ttl_seconds == 60
        got = cache_pb2_grpc.CacheServiceStub(channel).Get(
            cache_pb2.GetRequest(key="fz:unknown"), timeout=TIMEOUT
        )
    assert from_value(got.value) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x0a\x03\xff\xfe\xfd", "invalid UTF-8 in the key"),
        (b"\x0a\x09stock:a", "a field longer than the message"),
        (b"\xff\xff\xff", "no valid tag"),
    ],
)
def test_undecodable_requests_are_invalid_argument(stack: Stack, payload: bytes, why: str) -> None:
    with grpc.insecure_channel(stack.cache.grpc_address) as channel:
        raw = channel.unary_unary(
            "/marketcache.v1.CacheService/Get",
            request_serializer=lambda data: data,
            response_deserializer=cache_pb2.GetResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            raw(payload, timeout=TIMEOUT)
    error = caught.value
    assert error.code() is C.INVALID_ARGUMENT, (why, error.details())
    assert "GetRequest" in (error.details() or "")


def _nested(number: float, shape: str) -> struct_pb2.Value:
    value = struct_pb2.Value(number_value=number)
    if shape == "list":
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=[struct_pb2.Value(), value]))
    if shape == "struct":
        outer = struct_pb2.Value()
        outer.struct_value.fields["deep"].list_value.values.append(value)
        return outer
    return value


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("shape", ["bare", "list", "struct"])
def test_numbers_json_cannot_carry_are_refused(stack: Stack, number: float, shape: str) -> None:
    """A value is JSON: NaN and infinities would be stored, then fail every REST read."""
    value = _nested(number, shape)
    with grpc.insecure_channel(stack.cache.grpc_address) as channel:
        cache = cache_pb2_grpc.CacheServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            cache.Set(cache_pb2.SetRequest(key="fz:nan", value=value), timeout=TIMEOUT)
        assert caught.value.code() is C.INVALID_ARGUMENT, caught.value.details()
        assert "finite" in (caught.value.details() or "")
        item = cache_pb2.MSetItem(key="fz:nan2", value=value)
        with pytest.raises(grpc.RpcError) as caught:
            cache.MSet(cache_pb2.MSetRequest(items=[item]), timeout=TIMEOUT)
        assert caught.value.code() is C.INVALID_ARGUMENT, caught.value.details()
        assert "items[0].value" in (caught.value.details() or "")
        got = cache.MGet(cache_pb2.MGetRequest(keys=["fz:nan", "fz:nan2"]), timeout=TIMEOUT)
    assert [r.found for r in got.results] == [False, False]
