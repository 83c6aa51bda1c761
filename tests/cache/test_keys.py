"""Key, prefix and TTL rules."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from services.cache.store.keys import KeyRules
from services.cache.store.ttl_policy import TtlPolicy, remaining_seconds
from services.common.errors import ServiceError


def _violation(err: ServiceError) -> tuple[str, str]:
    (detail,) = err.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    (violation,) = detail.field_violations
    return violation.field, violation.description


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("stock:AAPL", "stock"),
        ("news:AAPL:2025-01-15", "news"),
        ("sector:technology:performance", "sector"),
        ("ünï:cödé", "ünï"),
        ("a:" + "x" * 254, "a"),  # exactly 256 bytes
    ],
)
def test_valid_keys_give_their_prefix(key: str, prefix: str) -> None:
    assert KeyRules(1).prefix_of(key) == prefix


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("AAPL", "has no prefix: expected '<prefix>:<rest>', e.g. 'stock:AAPL'"),
        ("", "key is empty"),
        (":AAPL", "empty prefix segment"),
        ("stock:", "nothing after the prefix"),
        ("stock:AA PL", "white space"),
        ("stock:AAPL\n", "white space"),
        ("stock:\x00x", "control character"),
        ("stock:\x7fx", "control character"),
        ("a:" + "x" * 255, "257 bytes"),
        ("a:" + "é" * 128, "258 bytes"),  # 128 characters, but 2 bytes each
    ],
)
def test_bad_keys_are_invalid_argument_with_the_expected_form(key: str, says: str) -> None:
    with pytest.raises(ServiceError) as caught:
        KeyRules(1).prefix_of(key, "items[3].key")
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert says in caught.value.message
    field, description = _violation(caught.value)
    assert field == "items[3].key"
    assert says in description


def test_depth_two_takes_two_segments() -> None:
    rules = KeyRules(2)
    assert rules.prefix_of("news:AAPL:2025-01-15") == "news:AAPL"
    with pytest.raises(ServiceError) as caught:
        rules.prefix_of("news:AAPL")
    assert "'<part1>:<part2>:<rest>'" in caught.value.message
    with pytest.raises(ServiceError):
        rules.prefix_of("news::x")
    assert rules.check_prefix("news:AAPL") == "news:AAPL"
    with pytest.raises(ServiceError):
        rules.check_prefix("news")


def test_prefixes_and_prefix_or_key() -> None:
    rules = KeyRules(1)
    assert rules.check_prefix("stock") == "stock"
    assert rules.prefix_or_key("stock") == "stock"
    assert rules.prefix_or_key("stock:AAPL:x") == "stock"
    for bad in ("", "st ock", "stock:AAPL", "a\tb"):
        with pytest.raises(ServiceError) as caught:
            rules.check_prefix(bad)
        assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT


def test_ttl_zero_is_the_default_and_bounds_are_named() -> None:
    policy = TtlPolicy(3600, 30 * 86_400)
    assert policy.resolve(0) == 3600
    assert policy.resolve(1) == 1
    assert policy.resolve(30 * 86_400) == 30 * 86_400
    for bad in (-1, 30 * 86_400 + 1):
        with pytest.raises(ServiceError) as caught:
            policy.resolve(bad, "items[0].ttl_seconds")
        assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "use 1 to 2592000 seconds (30 days), or 0 for the default 3600" in (
            caught.value.message
        )
        assert _violation(caught.value)[0] == "items[0].ttl_seconds"


def test_remaining_seconds_rounds_up_and_never_shows_zero_for_a_live_entry() -> None:
    assert remaining_seconds(100.0, 40.0) == 60
    assert remaining_seconds(100.0, 99.5) == 1
    assert remaining_seconds(100.0, 99.999) == 1
