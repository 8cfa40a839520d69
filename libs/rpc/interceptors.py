"""Server interceptors: correlation, tracing, metrics, deadline, auth, validation, error mapping.

grpc.aio interceptors return method handlers; each one here wraps the handler's behaviour for
unary-request RPCs (unary-unary and unary-stream) and passes client-streaming RPCs through
untouched, since the mesh's contracts have none. The first interceptor in the list is the outermost.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import protovalidate
from google.protobuf.message import Message
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from libs.rpc import deadline
from libs.rpc.auth import (
    AuthError,
    ScopeMap,
    TokenVerifier,
    current_principal,
    is_open_method,
    required_scope,
)
from libs.rpc.errors import REASON_KEY, DomainError, Unimplemented
from libs.telemetry import (
    GRPC_CORRELATION_KEY,
    RPC_SERVER_HANDLING_SECONDS,
    accept_correlation_id,
    correlation_id,
)

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]
#: Wraps a unary-request behaviour: receives the next behaviour, returns the wrapped one. For
#: unary-stream RPCs the wrapped behaviour's result is an async iterator.
Wrapper = Callable[[Behavior, bool], Behavior]


def wrap_handler(handler: grpc.RpcMethodHandler | None, wrapper: Wrapper) -> grpc.RpcMethodHandler | None:
    """Return `handler` with its unary-request behaviour wrapped by `wrapper(behavior, streaming)`."""
    if handler is None or handler.request_streaming:
        return handler
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            wrapper(handler.unary_stream, True),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        wrapper(handler.unary_unary, False),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def _iterate(result: Any) -> AsyncIterator[Any]:
    """Yield a streaming behaviour's responses, whether it is an async generator or writes via context."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif inspect.isawaitable(result):
        await result


def around(
    before: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Callable[[], None] | None]],
) -> Wrapper:
    """Make a wrapper from a coroutine run before the behaviour; it may return a cleanup callable."""

    def wrapper(behavior: Behavior, streaming: bool) -> Behavior:
        if streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                cleanup = await before(request, context)
                try:
                    async for item in _iterate(behavior(request, context)):
                        yield item
                finally:
                    if cleanup:
                        cleanup()

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            cleanup = await before(request, context)
            try:
                return await behavior(request, context)
            finally:
                if cleanup:
                    cleanup()

        return unary

    return wrapper


def _metadata_value(metadata: Sequence[tuple[str, Any]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else value.decode()
    return None


def _split_method(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _merge_trailing(
    context: grpc.aio.ServicerContext, *extra: tuple[str, str]
) -> tuple[tuple[str, str], ...]:
    # set_trailing_metadata and abort replace, not append: keep what outer interceptors set.
    return tuple(context.trailing_metadata() or ()) + extra


class CorrelationInterceptor(grpc.aio.ServerInterceptor):
    """Sets the correlation id contextvar from `x-correlation-id` (or a new id) and echoes it back.

    The id goes back in trailing metadata, never in early initial metadata: a call that has sent
    headers is committed and gRPC would no longer retry it on UNAVAILABLE.
    """

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)
        incoming = _metadata_value(handler_call_details.invocation_metadata, GRPC_CORRELATION_KEY)

        async def before(request: Any, context: grpc.aio.ServicerContext) -> Callable[[], None]:
            cid = accept_correlation_id(incoming)
            token = correlation_id.set(cid)
            context.set_trailing_metadata(_merge_trailing(context, (GRPC_CORRELATION_KEY, cid)))
            return lambda: correlation_id.reset(token)

        return wrap_handler(handler, around(before))


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Observes each RPC's latency in `grpc_server_handling_seconds` by service, method and code."""

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)
        service, method = _split_method(handler_call_details.method)

        def observe(context: grpc.aio.ServicerContext, started: float, failed: bool) -> None:
            code = context.code()
            if code is None:
                # No status set: success, or an exception no inner interceptor mapped (gRPC says UNKNOWN).
                code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
            RPC_SERVER_HANDLING_SECONDS.labels(service, method, code.name).observe(
                time.perf_counter() - started
            )

        def wrapper(behavior: Behavior, streaming: bool) -> Behavior:
            if streaming:

                async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                    started, failed = time.perf_counter(), True
                    try:
                        async for item in _iterate(behavior(request, context)):
                            yield item
                        failed = False
                    finally:
                        observe(context, started, failed)

                return stream

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    response = await behavior(request, context)
                    failed = False
                    return response
                finally:
                    observe(context, started, failed)

            return unary

        return wrap_handler(handler, wrapper)


class DeadlineInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls whose deadline has already passed and exposes the time left (`deadline.remaining`)."""

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)

        async def before(request: Any, context: grpc.aio.ServicerContext) -> Callable[[], None]:
            left = context.time_remaining()
            if left is not None and left <= 0:
                # Work done now would be thrown away by the caller, who has already given up.
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call started"
                )
            token = deadline.set_remaining(left)
            return lambda: deadline.reset(token)

        return wrap_handler(handler, around(before))


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks `authorization: Bearer <JWT>` and the method's scope (S2); health and reflection are open.

    With no verifier (no MESH_AUTH_KEYS, the dev default) every call passes. With one, a method
    missing from the scope map is refused: least privilege fails closed.
    """

    def __init__(self, verifier: TokenVerifier | None, scopes: ScopeMap | None = None) -> None:
        """Create the interceptor.

        Args:
            verifier: Token verifier; None turns authentication off.
            scopes: Full method name (or `/<service>/*`) to required scope.
        """
        self._verifier = verifier
        self._scopes = dict(scopes or {})

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if self._verifier is None or is_open_method(method):
            return handler
        verifier = self._verifier
        header = _metadata_value(handler_call_details.invocation_metadata, "authorization")
        needed = required_scope(self._scopes, method)

        async def before(request: Any, context: grpc.aio.ServicerContext) -> Callable[[], None]:
            scheme, _, token = (header or "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            try:
                principal = verifier.verify(token.strip())
            except AuthError as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            if needed is None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no scope grants {method}")
            if needed not in principal.scopes:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, f"scope {needed!r} required for {method}"
                )
            reset = current_principal.set(principal)
            return lambda: current_principal.reset(reset)

        return wrap_handler(handler, around(before))


def _field_path(violation: protovalidate.Violation) -> str:
    parts: list[str] = []
    for element in violation.proto.field.elements:
        name = element.field_name
        subscript = element.subscript
        if subscript is not None:
            value = subscript.value
            name += f"[{value!r}]" if isinstance(value, str) else f"[{value}]"
        parts.append(name)
    return ".".join(parts)


def describe_violations(violations: Sequence[protovalidate.Violation]) -> str:
    """Render violations as `field: message; field: message` (e.g. `currency: does not match ...`)."""
    return "; ".join(
        f"{path}: {v.proto.message}" if (path := _field_path(v)) else v.proto.message for v in violations
    )


class ValidationInterceptor(grpc.aio.ServerInterceptor):
    """Validates requests against their protovalidate rules (C3); violations become INVALID_ARGUMENT."""

    def __init__(self, validator: protovalidate.Validator | None = None) -> None:
        """Create the interceptor; one validator is reused since it caches compiled rules."""
        self._validator = validator or protovalidate.Validator()

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)
        validator = self._validator

        async def before(request: Any, context: grpc.aio.ServicerContext) -> None:
            if not isinstance(request, Message):
                return
            try:
                violations = validator.collect_violations(request)
            except (protovalidate.CompilationError, protovalidate.EvaluationError):
                # A broken rule is our defect, not the caller's: log it and answer INTERNAL.
                log.exception("validation rules failed for %s", handler_call_details.method)
                await context.abort(grpc.StatusCode.INTERNAL, "request validation failed")
            if violations:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, describe_violations(violations))

        return wrap_handler(handler, around(before))


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps DomainError to its status; any other exception to INTERNAL with a generic message, logged."""

    async def intercept_service(self, continuation, handler_call_details):
        """Wrap the handler (see class docstring)."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method

        async def fail(context: grpc.aio.ServicerContext, exc: Exception) -> None:
            if isinstance(exc, NotImplementedError):
                exc = Unimplemented(f"{method} is not built yet")
            if isinstance(exc, DomainError):
                extra = ((REASON_KEY, exc.reason),) if exc.reason else ()
                await context.abort(exc.code, exc.details, _merge_trailing(context, *extra))
            # Details of unexpected errors may hold payload data; the caller gets an id to quote instead.
            log.exception("unhandled error in %s", method)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error (correlation id {correlation_id.get()})",
                _merge_trailing(context),
            )

        def wrapper(behavior: Behavior, streaming: bool) -> Behavior:
            if streaming:

                async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                    try:
                        async for item in _iterate(behavior(request, context)):
                            yield item
                    except grpc.aio.AbortError:
                        raise
                    except Exception as exc:
                        await fail(context, exc)

                return stream

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await behavior(request, context)
                except grpc.aio.AbortError:
                    raise  # the servicer (or an inner check) already chose the status
                except Exception as exc:
                    await fail(context, exc)

            return unary

        return wrap_handler(handler, wrapper)


def default_interceptors(
    *, verifier: TokenVerifier | None = None, scopes: ScopeMap | None = None, tracing: bool = True
) -> list[grpc.aio.ServerInterceptor]:
    """Return the standard chain, outermost first.

    Order: correlation (so every later log line has the id), tracing (the span covers the rest),
    metrics (latency includes auth and validation refusals), deadline, auth, validation, error
    mapping (innermost, so the servicer's DomainErrors become statuses the outer layers record).

    Args:
        verifier: Token verifier; None leaves authentication off.
        scopes: Method-to-scope map for the auth interceptor.
        tracing: Whether to add the OpenTelemetry server interceptor.

    Returns:
        The interceptors, for `grpc.aio.server(interceptors=...)`.
    """
    chain: list[grpc.aio.ServerInterceptor] = [CorrelationInterceptor()]
    if tracing:
        # The contrib interceptor works with grpc 1.85: it extracts traceparent from metadata,
        # opens a SERVER span named after the method and records the status from context.abort.
        chain.append(aio_server_interceptor())
    chain += [
        MetricsInterceptor(),
        DeadlineInterceptor(),
        AuthInterceptor(verifier, scopes),
        ValidationInterceptor(),
        ErrorInterceptor(),
    ]
    return chain
