"""Envelope rules: ids, meta stamping, headers with trace context, decoding to poison."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from libs.bus.envelope import (
    CORRELATION_ID,
    EVENT_ID,
    EVENT_TYPE,
    MSG_ID,
    PoisonMessage,
    decode,
    new_event_id,
    publish_headers,
    stamp_meta,
)
from tests.integration.bus.events import SUBJECT, ThingHappened


def test_event_ids_are_uuid7_and_sort_in_creation_order():
    ids = [new_event_id() for _ in range(5000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}


def test_stamp_meta_fills_only_what_the_producer_left_unset():
    event = ThingHappened(thing_id="t1")
    event.meta.correlation_id = "set-by-producer"

    stamp_meta(event, event_id="e1", correlation_id="c1", causation_id="x1", key="t1", producer="orders")

    assert (event.meta.event_id, event.meta.correlation_id, event.meta.causation_id) == (
        "e1",
        "set-by-producer",
        "x1",
    )
    assert (event.meta.key, event.meta.producer) == ("t1", "orders")
    assert event.meta.HasField("occurred_at") and event.meta.source_system != 0


def test_headers_carry_ids_type_and_the_current_trace_context():
    provider = TracerProvider()

    with provider.get_tracer("t").start_as_current_span("produce") as span:
        headers = publish_headers(SUBJECT, "e1", "c1", None)

    assert headers[MSG_ID] == headers[EVENT_ID] == "e1"
    assert (headers[EVENT_TYPE], headers[CORRELATION_ID]) == (SUBJECT, "c1")
    assert headers["traceparent"].split("-")[1] == f"{span.get_span_context().trace_id:032x}"
    assert trace.get_current_span() is not span


def _valid() -> ThingHappened:
    event = ThingHappened(thing_id="t1")
    stamp_meta(event, event_id="e1", correlation_id="c1", key="t1", producer="orders")
    return event


def test_a_valid_event_decodes_by_its_type_header():
    event = _valid()

    decoded = decode({EVENT_TYPE: SUBJECT}, event.SerializeToString())

    assert decoded == event


@pytest.mark.parametrize(
    ("headers", "payload", "reason"),
    [
        ({}, b"", "missing Retail-Event-Type"),
        ({EVENT_TYPE: "retail.nope.v1.Gone"}, b"", "unknown event type retail.nope.v1.Gone"),
        ({EVENT_TYPE: SUBJECT}, b"\xff\xff", "undecodable"),
        ({EVENT_TYPE: SUBJECT}, ThingHappened(thing_id="t1").SerializeToString(), "invalid"),
    ],
)
def test_messages_that_can_never_be_handled_are_poison(headers, payload, reason):
    with pytest.raises(PoisonMessage, match=reason):
        decode(headers, payload)
