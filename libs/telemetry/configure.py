"""One call per process that sets up tracing, JSON logging and redaction."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import IO

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from libs.config import ServiceSettings, read_secret
from libs.telemetry.log import configure_logging
from libs.telemetry.redaction import set_redaction_key
from libs.telemetry.tracing import W3C_PROPAGATOR, build_tracer_provider


@dataclass(frozen=True)
class Telemetry:
    """What `configure_telemetry` set up.

    Attributes:
        service_name: Name in traces and log lines.
        tracer_provider: The process's (global) tracer provider.
    """

    service_name: str
    tracer_provider: TracerProvider

    def shutdown(self) -> None:
        """Flush buffered spans and stop exporting; call last, when the service stops."""
        self.tracer_provider.shutdown()


_lock = threading.Lock()
_current: Telemetry | None = None


def current_telemetry() -> Telemetry | None:
    """Return what `configure_telemetry` set up in this process, or None."""
    return _current


def configure_telemetry(
    service_name: str,
    settings: ServiceSettings | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    log_stream: IO[str] | None = None,
) -> Telemetry:
    """Install tracing, W3C propagation, JSON logging and the redaction key for this process.

    Call it once, in `__main__`, before anything logs or opens a span. OpenTelemetry allows one
    global tracer provider per process, so a second call is refused rather than silently ignored.

    Args:
        service_name: The service's name; `OTEL_SERVICE_NAME` in settings overrides it for traces.
        settings: Service settings (log level, OTLP endpoint, redaction key); None means defaults.
        span_exporter: An extra exporter fed span by span; tests pass an in-memory one.
        log_stream: Where JSON log lines go; standard error by default.

    Returns:
        The handle to shut telemetry down with.

    Raises:
        RuntimeError: Telemetry was already configured in this process.
    """
    global _current
    with _lock:
        if _current is not None:
            raise RuntimeError("configure_telemetry was already called in this process")
        trace_name = settings.trace_service_name if settings else service_name
        provider = build_tracer_provider(
            trace_name,
            otlp_endpoint=settings.otel_exporter_otlp_endpoint if settings else None,
            span_exporter=span_exporter,
        )
        trace.set_tracer_provider(provider)
        propagate.set_global_textmap(W3C_PROPAGATOR)
        configure_logging(service_name, settings.log_level if settings else "INFO", log_stream)
        set_redaction_key(read_secret(settings, "redaction_key") if settings else None)
        _current = Telemetry(service_name=trace_name, tracer_provider=provider)
        return _current
