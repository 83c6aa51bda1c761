"""Request building from path, query and body; JSON shapes of replies."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import grpc
import pytest
from google.protobuf import descriptor_pool, struct_pb2, timestamp_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from marketcache.v1 import cache_pb2, market_data_pb2, sector_pb2
from services.common.errors import ServiceError
from services.gateway.routes import Match, Router, api_services, build_routes
from services.gateway.transcode import build_request, message_json, response_json


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(build_routes(api_services()))


def _build(router: Router, method: str, url: str, body: bytes = b"") -> object:
    path, _, query = url.partition("?")
    return build_request(
        router.resolve(method, path), parse_qsl(query, keep_blank_values=True), body
    )


def _bad(router: Router, method: str, url: str, body: bytes = b"") -> ServiceError:
    with pytest.raises(ServiceError) as exc:
        _build(router, method, url, body)
    assert exc.value.code is grpc.StatusCode.INVALID_ARGUMENT
    return exc.value


def test_path_parameter_is_percent_decoded(router: Router) -> None:
    request = _build(router, "GET", "/api/v1/cache/keys/news%3AAAPL%3A2025-01-15")
    assert request == cache_pb2.GetRequest(key="news:AAPL:2025-01-15")


def test_repeated_query_parameter_by_repeats_and_by_comma_list(router: Router) -> None:
    repeated = _build(router, "GET", "/api/v1/market/quotes?symbols=AAPL&symbols=MSFT")
    comma = _build(router, "GET", "/api/v1/market/quotes?symbols=AAPL,%20MSFT,,")
    mixed = _build(router, "GET", "/api/v1/market/quotes?symbols=AAPL,MSFT&symbols=XLK")
    assert repeated == market_data_pb2.GetQuotesRequest(symbols=["AAPL", "MSFT"])
    assert comma == market_data_pb2.GetQuotesRequest(symbols=["AAPL", "MSFT"])
    assert list(mixed.symbols) == ["AAPL", "MSFT", "XLK"]  # type: ignore[attr-defined]


def test_scalar_query_parameters_in_camel_or_snake_case(router: Router) -> None:
    request = _build(router, "GET", "/api/v1/market/news/AAPL?date=2025-01-15&limit=5")
    assert request == market_data_pb2.GetNewsRequest(symbol="AAPL", date="2025-01-15", limit=5)
    history = _build(router, "GET", "/api/v1/market/history/AAPL?days=7")
    assert history == market_data_pb2.GetHistoryRequest(symbol="AAPL", days=7)


def test_bad_query_types_and_names_are_400_naming_the_field(router: Router) -> None:
    error = _bad(router, "GET", "/api/v1/market/history/AAPL?days=seven")
    assert "days" in error.message and "integer" in error.message
    assert isinstance(error.details[0], error_details_pb2.BadRequest)
    assert error.details[0].field_violations[0].field == "days"
    assert "between" in _bad(router, "GET", "/api/v1/market/history/A?days=99999999999").message
    unknown = _bad(router, "GET", "/api/v1/market/history/AAPL?dayz=7")
    assert "unknown query parameter 'dayz'" in unknown.message
    assert "days" in unknown.message  # the error lists what is accepted
    assert (
        "takes one value" in _bad(router, "GET", "/api/v1/market/history/A?days=1&days=2").message
    )


def test_query_cannot_override_the_path_or_a_body_route(router: Router) -> None:
    assert "set by the path" in _bad(router, "GET", "/api/v1/market/news/AAPL?symbol=X").message
    error = _bad(router, "POST", "/api/v1/cache/mget?keys=a:b", b'{"keys": ["a:b"]}')
    assert "JSON body" in error.message


def test_nested_query_fields_by_dots() -> None:
    # No annotated RPC of ours takes a nested query field; check on a request type that
    # has one, through the same setter the query path uses.
    from services.gateway.fields import FieldError, resolve_path, set_path

    pool = descriptor_pool.Default()
    reply_desc = pool.FindMessageTypeByName("marketcache.v1.GetSectorDataResponse")
    batch_desc = pool.FindMessageTypeByName("marketcache.v1.SetBatchSectorDataRequest")
    chain = resolve_path(reply_desc, "sector.performance.day1")
    response = sector_pb2.GetSectorDataResponse()
    set_path(response, chain, ["1.5"])
    assert response.sector.performance.day_1 == 1.5
    snake = resolve_path(reply_desc, "sector.relative_strength.ytd")
    set_path(response, snake, ["-2"])
    assert response.sector.relative_strength.ytd == -2.0
    stamp = resolve_path(reply_desc, "sector.asOf")
    set_path(response, stamp, ["2025-01-15T10:00:00Z"])
    assert response.sector.as_of == timestamp_pb2.Timestamp(seconds=1736935200)
    with pytest.raises(FieldError, match="repeated"):
        resolve_path(batch_desc, "sectors.symbol")
    with pytest.raises(FieldError, match="no field"):
        resolve_path(batch_desc, "ttl.x")
    with pytest.raises(FieldError, match="number"):
        set_path(response, chain, ["fast"])


def test_body_star_with_path_field(router: Router) -> None:
    body = json.dumps({"value": {"price": 1.5, "tags": ["a"], "n": None}, "ttlSeconds": "60"})
    request = _build(router, "PUT", "/api/v1/cache/keys/stock%3AAAPL", body.encode())
    assert isinstance(request, cache_pb2.SetRequest)
    assert request.key == "stock:AAPL"
    assert request.ttl_seconds == 60
    assert request.value.struct_value.fields["price"].number_value == 1.5
    assert request.value.struct_value.fields["n"].null_value == struct_pb2.NULL_VALUE
    snake = _build(router, "PUT", "/api/v1/cache/keys/a:b", b'{"ttl_seconds": 5, "value": 1}')
    assert snake.ttl_seconds == 5  # type: ignore[attr-defined]


def test_body_disagreeing_with_the_path_is_400(router: Router) -> None:
    error = _bad(router, "PUT", "/api/v1/cache/keys/a:b", b'{"key": "c:d", "value": 1}')
    assert "in the path" in error.message
    same = _build(router, "PUT", "/api/v1/cache/keys/a:b", b'{"key": "a:b", "value": 1}')
    assert same.key == "a:b"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"value": NaN}', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"ttlSeconds": "soon", "value": 1}', "does not fit SetRequest"),
        (b'{"ttlSeconds": 1.5, "value": 1}', "does not fit SetRequest"),
        (b'{"value": 1, "colour": "red"}', "does not fit SetRequest"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_malformed_or_mistyped_bodies_are_400(router: Router, body: bytes, fragment: str) -> None:
    assert fragment in _bad(router, "PUT", "/api/v1/cache/keys/a:b", body).message


def test_deeply_nested_value_is_400(router: Router) -> None:
    body = b'{"value": ' + b"[" * 300 + b"]" * 300 + b"}"
    assert "does not fit" in _bad(router, "PUT", "/api/v1/cache/keys/a:b", body).message


def test_a_body_on_a_route_without_one_is_400_but_empty_is_fine(router: Router) -> None:
    assert (
        "takes no request body" in _bad(router, "DELETE", "/api/v1/cache/keys/a:b", b"{}").message
    )
    assert _build(router, "DELETE", "/api/v1/cache/keys/a:b", b"  \n") == cache_pb2.DeleteRequest(
        key="a:b"
    )


def test_empty_path_parameter_is_400(router: Router) -> None:
    # The router never binds an empty segment; a hand-made match shows the guard.
    found = router.resolve("GET", "/api/v1/cache/keys/x")
    with pytest.raises(ServiceError, match="empty"):
        build_request(Match(found.route, {"key": ""}), [], b"")


def test_reply_json_is_camel_case_with_zero_values_and_plain_values(router: Router) -> None:
    route = router.resolve("GET", "/api/v1/cache/keys/a:b").route
    miss = response_json(route, cache_pb2.GetResponse(key="a:b"))
    assert miss == {"key": "a:b", "found": False, "ttlRemainingSeconds": 0}
    value = struct_pb2.Value()
    value.struct_value.update({"price": 1.5, "volume": 100, "list": [1, "x", None, True]})
    hit = response_json(
        route, cache_pb2.GetResponse(key="a:b", found=True, value=value, ttl_remaining_seconds=59)
    )
    assert hit == {
        "key": "a:b",
        "found": True,
        "value": {"price": 1.5, "volume": 100, "list": [1, "x", None, True]},
        "ttlRemainingSeconds": 59,  # an int64, as a JSON number
    }
    # Integral numbers in a JSON value stay integers on the wire, not 100.0.
    text = json.dumps(hit)
    assert re.search(r'"volume": 100[,}]', text) and '"list": [1, ' in text


def test_int64_are_numbers_everywhere_nested_and_repeated() -> None:
    reply = cache_pb2.HealthResponse(
        status="healthy",
        enabled=True,
        hit_rate=0.85,
        metrics=cache_pb2.CacheMetrics(
            hits=2**40,
            prefixes=[cache_pb2.PrefixMetrics(prefix="stock", keys=3, memory_bytes=2**33)],
        ),
    )
    data = message_json(reply)
    assert data["hitRate"] == 0.85
    assert data["metrics"]["hits"] == 2**40
    assert data["metrics"]["misses"] == 0
    assert data["metrics"]["prefixes"] == [
        {"prefix": "stock", "hits": 0, "misses": 0, "hitRate": 0.0, "keys": 3, "memoryBytes": 2**33}
    ]
    assert data["reason"] == "" and data["nodeId"] == ""
    big = message_json(cache_pb2.ClearResponse(deleted=2**62))
    assert big["deleted"] == 2**62 and json.loads(json.dumps(big))["deleted"] == 2**62


def test_timestamps_are_rfc3339() -> None:
    quote = market_data_pb2.Quote(symbol="AAPL", timestamp=timestamp_pb2.Timestamp(seconds=0))
    assert message_json(quote)["timestamp"] == "1970-01-01T00:00:00Z"
