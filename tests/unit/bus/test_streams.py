"""Subjects and stream/consumer specs derive from code, not from class names or guesses."""

from __future__ import annotations

from libs.bus.streams import STREAMS, ConsumerSpec, stream_for_subject, subject_for, subject_matches
from tests.integration.bus.events import ThingHappened


def test_the_subject_is_the_full_proto_name():
    assert subject_for(ThingHappened) == "retail.bustest.v1.ThingHappened"
    assert subject_for(ThingHappened()) == subject_for(ThingHappened.DESCRIPTOR)


def test_subject_wildcards_match_like_nats():
    assert subject_matches("retail.orders.v1.>", "retail.orders.v1.OrderAccepted")
    assert subject_matches("retail.*.v1.OrderAccepted", "retail.orders.v1.OrderAccepted")
    assert not subject_matches("retail.orders.v1.>", "retail.orders.v1")
    assert not subject_matches("retail.orders.v1.*", "retail.orders.v1.a.b")


def test_each_context_has_its_stream():
    assert stream_for_subject("retail.inventory.v1.StockReserved", STREAMS).name == "INVENTORY"
    assert stream_for_subject("retail.orders.v1.>", STREAMS).name == "ORDERS"
    assert [s.name for s in STREAMS] == [
        "ORDERS",
        "INVENTORY",
        "SHIPMENTS",
        "RETURNS",
        "CATALOG",
        "OPS",
        "INTEGRATION",
    ]


def test_retry_delays_follow_the_backoff_and_the_server_schedule_never_undercuts_ack_wait():
    spec = ConsumerSpec(
        durable="w",
        stream="ORDERS",
        filter_subjects=("x",),
        ack_wait=30,
        max_deliver=4,
        backoff=(1, 5, 60, 300),
    )

    assert [spec.retry_delay(n) for n in (1, 2, 3, 4, 9)] == [1, 5, 60, 300, 300]
    assert spec.server_backoff() == [30, 30, 60]  # max_deliver - 1 entries, each >= ack_wait
