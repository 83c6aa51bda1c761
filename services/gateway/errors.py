"""gRPC status to HTTP: grpc-gateway's status table and the google.rpc.Status JSON body."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pool, message_factory
from grpc_status import rpc_status

from services.common.errors import ServiceError
from services.gateway.transcode import message_json

# grpc-gateway's runtime.HTTPStatusFromCode, with CANCELLED as nginx's 499
# ("client closed request") as the issue asks; anything unlisted is 500.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status grpc-gateway answers for a gRPC code."""
    return HTTP_STATUS.get(code, 500)


class HttpError(Exception):
    """An error the gateway answers itself, with an HTTP status outside the table (404, 413...)."""

    def __init__(
        self,
        http: int,
        code: grpc.StatusCode,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http = http
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.message)


def status_body(
    code: grpc.StatusCode, msg: str, details: Sequence[any_pb2.Any] = ()
) -> dict[str, Any]:
    """The google.rpc.Status JSON: {"code", "message", "details": [{"@type", ...}]}."""
    return {"code": code.value[0], "message": msg, "details": [detail_json(d) for d in details]}


def service_error_body(error: ServiceError) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for an error raised inside the gateway (bad input, auth)."""
    packed = []
    for detail in error.details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    return http_status(error.code), status_body(error.code, error.message, packed)


def rpc_error_body(error: grpc.aio.AioRpcError, backend: str) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for a failed backend call, with its rich status details."""
    code = error.code()
    details: list[any_pb2.Any] = []
    text = error.details() or ""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # a status whose code disagrees with the call's: keep the call's
        status = None
    if status is not None:
        details = list(status.details)
        text = status.message
    if code is grpc.StatusCode.UNAVAILABLE and status is None:
        text = f"{backend} is unavailable: {text}"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED and status is None:
        text = f"{backend} did not answer within the deadline (Grpc-Timeout): {text}"
    return http_status(code), status_body(code, text, details)


def detail_json(detail: any_pb2.Any) -> dict[str, Any]:
    """One Any detail as protojson with "@type"; opaque types keep their base64 bytes."""
    type_name = detail.type_url.rpartition("/")[2]
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return {
            "@type": detail.type_url,
            "value": base64.b64encode(detail.value).decode("ascii"),
        }
    unpacked = message_factory.GetMessageClass(desc)()
    detail.Unpack(unpacked)
    return {"@type": detail.type_url, **message_json(unpacked)}
