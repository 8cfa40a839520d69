"""Test support: one in-memory span exporter per test process, whoever configured telemetry first."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.telemetry.configure import configure_telemetry, current_telemetry

_exporter: InMemorySpanExporter | None = None


def memory_exporter() -> InMemorySpanExporter:
    """Return the process-wide in-memory span exporter, configuring telemetry on first use.

    Tests of several libraries share one pytest process and OpenTelemetry allows one global tracer
    provider, so every test that looks at spans goes through this function. Call `clear()` on the
    result at the start of a test.
    """
    global _exporter
    if _exporter is None:
        exporter = InMemorySpanExporter()
        telemetry = current_telemetry()
        if telemetry is None:
            configure_telemetry("test", span_exporter=exporter)
        else:
            telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        _exporter = exporter
    return _exporter
