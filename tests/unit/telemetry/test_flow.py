"""A flow captured with its state continues later in the same trace and under the same correlation id."""

from __future__ import annotations

from opentelemetry import trace

from libs.telemetry import capture_flow, correlation_id, resume_flow


def test_a_resumed_flow_continues_the_trace_and_correlation_it_was_captured_in(spans) -> None:
    tracer = trace.get_tracer(__name__)
    token = correlation_id.set("flow-1")
    with tracer.start_as_current_span("ingest") as first:
        saved = capture_flow()
    correlation_id.reset(token)

    with resume_flow(saved), tracer.start_as_current_span("ship") as later:
        seen = correlation_id.get()

    assert later.get_span_context().trace_id == first.get_span_context().trace_id
    assert later.parent is not None and later.parent.span_id == first.get_span_context().span_id
    assert seen == "flow-1"
    assert correlation_id.get() is None


def test_an_empty_flow_changes_nothing(spans) -> None:
    with resume_flow({}):
        assert correlation_id.get() is None
        assert not trace.get_current_span().get_span_context().is_valid
