"""Prometheus metrics every library shares, and the endpoint that serves them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

# Latency buckets from 1 ms to 10 s: gRPC calls inside the mesh take milliseconds, external hops seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Server-side RPC latency; names and labels follow go-grpc-prometheus so stock dashboards work.
#: Labels: grpc_service (`retail.orders.v1.OrderService`), grpc_method (`AcceptOrder`),
#: grpc_code (`OK`, `INVALID_ARGUMENT`, ...).
RPC_SERVER_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
    buckets=_LATENCY_BUCKETS,
)

#: Client-side RPC latency, retries and waiting included, with the same labels.
RPC_CLIENT_HANDLING_SECONDS = Histogram(
    "grpc_client_handling_seconds",
    "Time until an outgoing RPC completed, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
    buckets=_LATENCY_BUCKETS,
)

#: Allowed values of the `outcome` label of HANDLER_OUTCOMES. Technical and business failures are
#: separate outcomes so alerts can tell them apart (V4).
HANDLER_OUTCOME_VALUES = frozenset({"ok", "duplicate", "retry", "business_error", "dead_letter"})

#: Outcomes of message and actor handlers: labels `handler` (e.g. `orders.OrderAccepted`) and `outcome`.
HANDLER_OUTCOMES = Counter(
    "retail_handler_outcomes_total",
    "Handled messages and turns by handler and outcome (ok, duplicate, retry, business_error, dead_letter).",
    ["handler", "outcome"],
)

#: Handler latency, by handler and outcome.
HANDLER_SECONDS = Histogram(
    "retail_handler_seconds",
    "Time a message or actor handler took, by handler and outcome.",
    ["handler", "outcome"],
    buckets=_LATENCY_BUCKETS,
)


def record_outcome(handler: str, outcome: str, seconds: float | None = None) -> None:
    """Count one handled message or turn (and its latency, when given).

    Args:
        handler: Stable handler name; keep the set small (one per event type and consumer).
        outcome: One of HANDLER_OUTCOME_VALUES.
        seconds: Time the handler took.

    Raises:
        ValueError: `outcome` is not an allowed value (a typo would create a series no alert watches).
    """
    if outcome not in HANDLER_OUTCOME_VALUES:
        raise ValueError(f"unknown handler outcome {outcome!r}; use one of {sorted(HANDLER_OUTCOME_VALUES)}")
    HANDLER_OUTCOMES.labels(handler, outcome).inc()
    if seconds is not None:
        HANDLER_SECONDS.labels(handler, outcome).observe(seconds)


@dataclass
class MetricsServer:
    """A running Prometheus endpoint.

    Attributes:
        host: Bound address.
        port: Bound port (the real one when 0 was asked for).
    """

    host: str
    port: int
    _httpd: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serve `/metrics` from a background thread.

    Args:
        port: Port to bind; 0 picks a free one (tests), reported in the result.
        host: Address to bind; loopback by default so a laptop run exposes nothing, `0.0.0.0` in k8s.
        registry: Registry to expose.

    Returns:
        The running server; call `close()` on shutdown.
    """
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host=host, port=httpd.server_port, _httpd=httpd, _thread=thread)
