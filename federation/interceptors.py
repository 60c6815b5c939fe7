"""One server interceptor: errors to gRPC statuses with rich details, plus metrics and logs.

A :class:`~credit.errors.CreditError` leaves as its own status code with a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer: ``BadRequest`` field
violations for invalid input and an ``ErrorInfo`` naming the error. Anything else is a
bug: it is logged with its traceback and leaves as INTERNAL with a generic message.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from prometheus_client import Counter, Histogram

from credit.errors import CreditError, InvalidInput

log = structlog.get_logger("jjj.node")

RPCS = Counter("jjj_node_rpcs_total", "RPCs answered by the node", ["region", "method", "code"])
LATENCY = Histogram(
    "jjj_node_rpc_seconds",
    "Time to answer an RPC",
    ["region", "method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def status_details(exc: CreditError) -> bytes:
    """The serialized ``google.rpc.Status`` describing an error."""
    code = getattr(code_pb2, exc.grpc_code)
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=type(exc).__name__, domain="credit.v1"))
    details.append(info)
    if isinstance(exc, InvalidInput) and exc.violations:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in exc.violations
                ]
            )
        )
        details.append(bad)
    serialized: bytes = status_pb2.Status(code=code, message=exc.detail, details=details).SerializeToString()
    return serialized


# What an unexpected failure leaves as: the status a whole call gets, for one item of a batch.
INTERNAL_STATUS: bytes = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error").SerializeToString()


class _Malformed:
    """Stands in for a request whose bytes did not decode, so the handler can refuse it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    # gRPC answers a request that fails to decode with INTERNAL; it is the caller's
    # fault, so it must be INVALID_ARGUMENT with the reason.
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError and friends
            return _Malformed(exc)

    return decode


def _check_decoded(request: Any) -> None:
    if isinstance(request, _Malformed):
        raise InvalidInput.for_field("request", f"malformed protobuf message: {request.error}")


if TYPE_CHECKING:
    # Generic only in grpc-stubs; the runtime class cannot be subscripted.
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor

# What grpc.aio really hands an interceptor: coroutine and async-generator behaviours that
# take the asyncio context. grpc-stubs types RpcMethodHandler for the sync server only.
_UnaryBehaviour = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]
_StreamBehaviour = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], AsyncIterator[Any]]


class ServiceInterceptor(_ServerInterceptor):
    """Counts and times every call of the service's methods and turns errors into
    statuses (:meth:`_fail`). A method's handler is wrapped once, at its first call,
    with its metric series resolved: wrapping it again on every call cost a node's
    answer two closures, a handler and two series lookups."""

    def __init__(self, *, region: str) -> None:
        self.region = region
        # Each method's handler as the server gave it, and wrapped; one entry per method
        # the service registers (unknown methods have no handler and are not kept).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def _fail(self, context: grpc.aio.ServicerContext[Any, Any], method: str, exc: BaseException) -> None:
        if isinstance(exc, CreditError):
            code = grpc.StatusCode[exc.grpc_code]
            log.info("rpc_rejected", method=method, code=code.name, detail=exc.detail)
            RPCS.labels(self.region, method, code.name).inc()
            await context.abort(code, exc.detail, trailing_metadata=(("grpc-status-details-bin", status_details(exc)),))
        log.exception("rpc_failed", method=method)
        RPCS.labels(self.region, method, "INTERNAL").inc()
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/credit."):
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        succeeded = RPCS.labels(self.region, method, "OK")
        if handler.unary_unary:
            inner = cast(_UnaryBehaviour, handler.unary_unary)
            latency = LATENCY.labels(self.region, method)

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started = time.perf_counter()
                try:
                    _check_decoded(request)
                    response = await inner(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:  # translated, never leaked
                    await self._fail(context, method, exc)
                    raise
                finally:
                    latency.observe(time.perf_counter() - started)
                succeeded.inc()
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            inner_stream = cast(_StreamBehaviour, handler.unary_stream)

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                try:
                    _check_decoded(request)
                    async for item in inner_stream(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:  # translated, never leaked
                    await self._fail(context, method, exc)
                    raise
                succeeded.inc()

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler
