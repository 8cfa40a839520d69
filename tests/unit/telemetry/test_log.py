"""JSON log lines: one object per line, ids of the current request, and no personal data."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace

from libs.telemetry import correlation_id

log = logging.getLogger("orders.test")


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_line_carries_service_correlation_and_trace_ids(spans, log_stream) -> None:
    token = correlation_id.set("corr-123")
    try:
        with trace.get_tracer(__name__).start_as_current_span("accept-order") as span:
            log.info("order accepted", extra={"order_id": "o-1", "attempt": 2})
            context = span.get_span_context()
    finally:
        correlation_id.reset(token)

    (line,) = _lines(log_stream)
    assert line["msg"] == "order accepted"
    assert line["level"] == "INFO"
    assert line["logger"] == "orders.test"
    assert line["service"] == "orders"
    assert line["correlation_id"] == "corr-123"
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)
    assert line["order_id"] == "o-1" and line["attempt"] == 2
    assert line["ts"].endswith("Z")


def test_line_outside_a_request_has_null_ids(log_stream) -> None:
    log.warning("idle")

    (line,) = _lines(log_stream)
    assert line["correlation_id"] is None
    assert line["trace_id"] is None and line["span_id"] is None


def test_no_personal_data_or_secret_reaches_a_line(log_stream) -> None:
    canary = "canary+7f3a@example.com"

    log.info("customer %s changed address", canary, extra={"customer": {"phone": "+1 613 555 0135"}})
    log.info(
        "webhook", extra={"headers": {"X-Shopify-Hmac-Sha256": "c2VjcmV0", "Authorization": "Bearer t0k"}}
    )
    try:
        raise ValueError(f"bad shipping address for {canary}")
    except ValueError:
        log.exception("could not map order")

    text = log_stream.getvalue()
    assert canary not in text
    assert "613 555 0135" not in text
    assert "c2VjcmV0" not in text and "t0k" not in text
    assert len(_lines(log_stream)) == 3
    assert "ValueError" in _lines(log_stream)[2]["exc"]
