"""Admin bearer tokens and JSON <-> google.protobuf.Value."""

from __future__ import annotations

import grpc
import pytest

from services.common.auth import AdminAuth
from services.common.errors import ServiceError
from services.common.json_value import from_value, to_value


def _code(auth: AdminAuth, metadata: list[tuple[str, str]]) -> grpc.StatusCode | None:
    try:
        auth.check(metadata, "Clear")
    except ServiceError as exc:
        return exc.code
    return None


def test_admin_token_outcomes() -> None:
    auth = AdminAuth("s3cret")
    assert _code(auth, [("authorization", "Bearer s3cret")]) is None
    assert _code(auth, [("authorization", "bearer  s3cret ")]) is None
    assert _code(auth, []) is grpc.StatusCode.UNAUTHENTICATED
    assert _code(auth, [("authorization", "Basic s3cret")]) is grpc.StatusCode.UNAUTHENTICATED
    assert _code(auth, [("authorization", "Bearer nope")]) is grpc.StatusCode.PERMISSION_DENIED
    unconfigured = AdminAuth(None)
    assert _code(unconfigured, [("authorization", "Bearer x")]) is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    with pytest.raises(ServiceError, match="set ADMIN_TOKEN"):
        unconfigured.check([], "Clear")


def test_json_values_round_trip() -> None:
    doc = {"price": 189.5, "volume": 51000000, "tags": ["a", None, True], "nested": {"x": []}}
    assert from_value(to_value(doc)) == doc
    assert from_value(to_value(None)) is None
    assert from_value(to_value("text")) == "text"


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", float("nan"), object()])
def test_non_json_values_are_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="not JSON-serializable"):
        to_value(bad)


def test_value_edge_cases_match_json_rules() -> None:
    assert from_value(to_value({1: "a", None: "b", 2.5: "c", False: "d"})) == {
        "1": "a",
        "null": "b",
        "2.5": "c",
        "false": "d",
    }
    assert from_value(to_value((1, 2.5))) == [1, 2.5]
    assert from_value(to_value({})) == {}
    assert from_value(to_value([])) == []
    assert to_value({}).WhichOneof("kind") == "struct_value"
    assert to_value([]).WhichOneof("kind") == "list_value"
    assert from_value(to_value(2**60)) == float(2**60)  # beyond a double's exact integers


@pytest.mark.parametrize(
    "bad", [float("inf"), {"k": float("-inf")}, 10**400, {(1, 2): "tuple key"}, [[]] * 0 + [{1j}]]
)
def test_values_json_cannot_carry_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError, match="not JSON-serializable"):
        to_value(bad)


def test_nesting_is_bounded_so_every_value_stays_parseable() -> None:
    from services.common.json_value import MAX_DEPTH

    deep: object = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    reparsed = type(to_value(deep))()
    reparsed.ParseFromString(to_value(deep).SerializeToString())  # protobuf accepts it
    with pytest.raises(TypeError, match="nested deeper"):
        to_value([deep])
