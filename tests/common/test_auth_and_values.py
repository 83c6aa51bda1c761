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
