"""Requests whose bytes do not parse answer INVALID_ARGUMENT, not UNKNOWN with a traceback.

grpcio runs the request deserializer before any handler or interceptor code,
and reports its exception as UNKNOWN ("Unexpected DecodeError") while logging
a traceback at ERROR: what a client sends must never do that. Invalid UTF-8 in
a string field, a corrupt wire format and nesting past protobuf's depth limit
are the caller's mistake, so they get INVALID_ARGUMENT with the parser's reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

_Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class _Undecodable:
    """Stands in for a request that did not parse; carries the parser's reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class DecodeGuard(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Turns request decoding failures of unary RPCs into INVALID_ARGUMENT."""

    def __init__(self) -> None:
        # One guarded handler per method, built on its first call.
        self._guarded: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}  # type: ignore[type-arg]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        cached = self._guarded.get(handler_call_details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = _guard(handler)
        self._guarded[handler_call_details.method] = (handler, guarded)
        return guarded


def _guard(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
    deserialize = handler.request_deserializer
    assert deserialize is not None
    behavior: _Behavior = handler.unary_unary  # type: ignore[assignment]

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    async def checked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Undecodable):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid protobuf message ({request.reason}); "
                "send the message the method expects, with UTF-8 strings and values "
                "nested less than 100 levels deep",
            )
        return await behavior(request, context)

    return grpc.unary_unary_rpc_method_handler(
        checked,
        request_deserializer=tolerant,
        response_serializer=handler.response_serializer,
    )
