"""Client channels: retries on UNAVAILABLE, keepalive, a deadline on every call, and propagated context."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from libs.config import ServiceSettings
from libs.rpc import deadline
from libs.rpc.auth import TokenProvider, token_provider_for
from libs.rpc.tls import channel_credentials
from libs.telemetry import (
    GRPC_CORRELATION_KEY,
    RPC_CLIENT_HANDLING_SECONDS,
    correlation_id,
    new_correlation_id,
)

DEFAULT_TIMEOUT_S = 5.0
# A call never gets less than this, so a nearly spent parent deadline fails fast and clearly on the
# server (DEADLINE_EXCEEDED) instead of with a zero or negative timeout error on the client.
MIN_TIMEOUT_S = 0.001


def retry_service_config(
    *, max_attempts: int = 4, initial_backoff_s: float = 0.1, max_backoff_s: float = 2.0
) -> str:
    """Return the JSON service config that retries every method on UNAVAILABLE only.

    Why only UNAVAILABLE: it means the call did not reach a servicer able to take it (connection
    refused, server draining with NOT_SERVING), or a servicer said "dependency down, try again".
    Mutating RPCs carry a `request_id`, so even a repeat of a processed call replays its first
    result. RESOURCE_EXHAUSTED is not retried here: it is back-pressure, and automatic retries
    would multiply the load it is shedding. DEADLINE_EXCEEDED is never retried: the deadline
    covers all attempts. gRPC caps attempts at 5.

    Args:
        max_attempts: Attempts including the first (2..5).
        initial_backoff_s: First back-off; later ones grow by 2x with jitter.
        max_backoff_s: Back-off ceiling.

    Returns:
        The `grpc.service_config` channel option value.
    """
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{}],  # every service and method on this channel
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": f"{initial_backoff_s}s",
                        "maxBackoff": f"{max_backoff_s}s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def _metadata_pairs(metadata: Any) -> list[tuple[str, Any]]:
    return list(metadata) if metadata else []


class MeshClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds a deadline, the correlation id and the bearer token to every call; records latency.

    The deadline is the call's own timeout, else `default_timeout_s`, and never more than what is
    left of the RPC being served (`libs.rpc.deadline.remaining`), so a chain of calls cannot outlive
    the first caller's deadline.
    """

    def __init__(self, default_timeout_s: float, token_provider: TokenProvider | None = None) -> None:
        """Create the interceptor.

        Args:
            default_timeout_s: Timeout of calls made without one.
            token_provider: Returns the bearer token for each call; None sends none.
        """
        self._default_timeout = default_timeout_s
        self._token_provider = token_provider

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        timeout = details.timeout if details.timeout is not None else self._default_timeout
        left = deadline.remaining()
        if left is not None:
            timeout = min(timeout, left)
        metadata = _metadata_pairs(details.metadata)
        if not any(key == GRPC_CORRELATION_KEY for key, _ in metadata):
            # An id the caller set explicitly (replaying a message, say) wins over the ambient one.
            metadata.append((GRPC_CORRELATION_KEY, correlation_id.get() or new_correlation_id()))
        token = self._token_provider() if self._token_provider else None
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        return grpc.aio.ClientCallDetails(
            details.method,
            max(timeout, MIN_TIMEOUT_S),
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        """Send the call with mesh metadata and a deadline; observe its latency when it ends."""
        started = time.perf_counter()
        call = await continuation(self._details(client_call_details), request)
        code = await call.code()  # waits for the end of the call; the caller still gets the call object
        method = client_call_details.method
        service, _, name = (
            (method.decode() if isinstance(method, bytes) else method).lstrip("/").partition("/")
        )
        RPC_CLIENT_HANDLING_SECONDS.labels(service, name, code.name).observe(time.perf_counter() - started)
        return call

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        """Send the call with mesh metadata and a deadline."""
        return await continuation(self._details(client_call_details), request)


def channel(
    target: str,
    *,
    settings: ServiceSettings | None = None,
    audience: str | None = None,
    token_provider: TokenProvider | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    default_timeout_s: float | None = None,
    max_attempts: int = 4,
    initial_backoff_s: float = 0.1,
    tracing: bool = True,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """Open a channel to another mesh service.

    Args:
        target: `host:port` (`INVENTORY_ADDR`).
        settings: The calling service's settings: TLS files, token settings, default timeout and
            message size come from them when given.
        audience: Target service name (`inventory`); tokens minted from settings are for it.
        token_provider: Overrides the token source derived from settings.
        credentials: Overrides the TLS credentials derived from settings.
        default_timeout_s: Deadline of calls made without a timeout.
        max_attempts: Attempts per call on UNAVAILABLE, see `retry_service_config`.
        initial_backoff_s: First retry back-off.
        tracing: Whether to add the OpenTelemetry client interceptors (client spans, traceparent).
        options: Extra channel options, appended last so they win.

    Returns:
        An open `grpc.aio.Channel`; close it (`await channel.close()` or `async with`).
    """
    if settings is not None:
        if credentials is None:
            credentials = channel_credentials(settings)
        if token_provider is None and audience is not None:
            token_provider = token_provider_for(settings, audience)
        if default_timeout_s is None:
            default_timeout_s = settings.grpc_client_timeout_s
    max_message = settings.grpc_max_message_bytes if settings else 4 * 1024 * 1024
    channel_options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        (
            "grpc.service_config",
            retry_service_config(max_attempts=max_attempts, initial_backoff_s=initial_backoff_s),
        ),
        # Keepalive finds dead peers behind NAT/LB idle timeouts; servers from libs.rpc.server allow it.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", max_message),
        # A peer restarted by its supervisor is back within seconds; gRPC's default reconnect
        # back-off grows to 120 s, which would leave calls to it failing long after it serves.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 3_000),
    ]
    if settings is not None and settings.tls_server_name:
        channel_options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    channel_options += list(options)
    interceptors: list[Any] = [MeshClientInterceptor(default_timeout_s or DEFAULT_TIMEOUT_S, token_provider)]
    if tracing:
        interceptors += aio_client_interceptors()
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=channel_options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors)
