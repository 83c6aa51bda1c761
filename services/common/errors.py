"""gRPC errors with rich google.rpc.Status details (read back by the gateway and clients)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status


class ServiceError(Exception):
    """A domain error carrying the gRPC status code to answer with."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[message.Message] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def to_status(self) -> grpc.Status:
        """The rich status (google.rpc.Status in trailing metadata)."""
        return build_status(self.code, self.message, self.details)


def build_status(
    code: grpc.StatusCode, msg: str, details: Sequence[message.Message] = ()
) -> grpc.Status:
    status = status_pb2.Status(code=code.value[0], message=msg)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return rpc_status.to_status(status)


async def abort(context: grpc.aio.ServicerContext[object, object], error: ServiceError) -> NoReturn:
    """Abort the RPC with the error's code, message and details."""
    await context.abort_with_status(error.to_status())  # type: ignore[attr-defined]
    raise AssertionError("abort_with_status returned")  # pragma: no cover


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Any, Req, Context], Awaitable[Resp]]


# The attribute on an `answers_service_errors` method naming the method it wraps: the
# server's per-method wrapper (services.common.unary_calls) maps ServiceError itself
# and calls that one, saving a coroutine frame per call.
SERVICE_ERRORS_INNER = "_service_errors_inner"


def answers_service_errors(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Decorate a servicer method: a ServiceError raised below becomes its gRPC status."""

    @functools.wraps(handler)
    async def wrapped(self: Any, request: Req, context: Context) -> Resp:
        try:
            return await handler(self, request, context)
        except ServiceError as exc:
            await abort(context, exc)

    setattr(wrapped, SERVICE_ERRORS_INNER, handler)
    return wrapped


def invalid_argument(msg: str, field: str = "", description: str = "") -> ServiceError:
    """INVALID_ARGUMENT with a BadRequest field violation naming the field."""
    details: list[message.Message] = []
    if field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=field, description=description or msg
                    )
                ]
            )
        )
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, msg, details)


def status_details(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[any_pb2.Any]:
    """The google.rpc.Status details carried by an error, if any."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return list(status.details) if status is not None else []


CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT
