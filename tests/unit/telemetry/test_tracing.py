"""Tracing: spans are exported, OTLP export reaches a collector, trace context survives headers."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from libs.telemetry import (
    build_tracer_provider,
    configure_telemetry,
    extract_trace_context,
    inject_trace_context,
)
from tests.support.otlp import OtlpCollector


def test_spans_reach_the_in_memory_exporter(spans) -> None:
    with trace.get_tracer(__name__).start_as_current_span("reserve-stock"):
        pass

    (span,) = spans.get_finished_spans()
    assert span.name == "reserve-stock"
    assert "service.name" in span.resource.attributes


def test_trace_context_round_trips_through_headers(spans) -> None:
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("publish") as producer:
        headers = inject_trace_context({"Nats-Msg-Id": "evt-1"})

    with tracer.start_as_current_span("consume", context=extract_trace_context(headers)) as consumer:
        pass

    assert headers["traceparent"].split("-")[1] == trace.format_trace_id(producer.get_span_context().trace_id)
    assert consumer.get_span_context().trace_id == producer.get_span_context().trace_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.get_span_context().span_id


def test_extract_accepts_capitalized_header_names(spans) -> None:
    with trace.get_tracer(__name__).start_as_current_span("publish") as producer:
        headers = {k.capitalize(): v for k, v in inject_trace_context().items()}

    context = extract_trace_context(headers)

    assert trace.get_current_span(context).get_span_context().trace_id == producer.get_span_context().trace_id


def test_extract_without_headers_starts_a_new_trace(spans) -> None:
    context = extract_trace_context(None)

    assert not trace.get_current_span(context).get_span_context().is_valid


@pytest.fixture
def collector():
    """A real OTLP gRPC collector on a free port."""
    collector = OtlpCollector().start()
    yield collector, collector.port
    collector.stop()


def test_otlp_exporter_sends_spans_with_the_service_name(collector) -> None:
    servicer, port = collector
    provider = build_tracer_provider("inventory", otlp_endpoint=f"http://127.0.0.1:{port}")

    with provider.get_tracer(__name__).start_as_current_span("reserve"):
        pass
    provider.force_flush(timeout_millis=10_000)

    assert servicer.received.wait(timeout=10)
    resource = servicer.requests[0].resource_spans[0].resource
    names = {a.value.string_value for a in resource.attributes if a.key == "service.name"}
    assert names == {"inventory"}
    assert servicer.requests[0].resource_spans[0].scope_spans[0].spans[0].name == "reserve"
    provider.shutdown()


def test_without_an_endpoint_nothing_is_exported() -> None:
    provider = build_tracer_provider("inventory")

    # No processor means spans end in memory and are dropped: a laptop run needs no Jaeger.
    assert provider._active_span_processor._span_processors == ()


def test_configure_telemetry_refuses_a_second_call(spans) -> None:
    with pytest.raises(RuntimeError, match="already called"):
        configure_telemetry("orders")
