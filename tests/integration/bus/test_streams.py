"""Streams and consumers are provisioned from code with the settings reliability.md asks for."""

from __future__ import annotations

from nats.js import api

from libs.bus.streams import STREAMS, ConsumerSpec, provision
from tests.integration.bus.events import SUBJECT, TEST_STREAM


async def test_provisioning_creates_streams_and_consumers_with_the_declared_settings(nc):
    js = nc.jetstream()
    spec = ConsumerSpec(
        durable="erp-worker",
        stream="ORDERS",
        filter_subjects=("retail.orders.v1.OrderAccepted",),
        ack_wait=30,
        max_deliver=5,
        backoff=(1, 5, 60),
        max_ack_pending=128,
    )

    await provision(js, STREAMS, [spec])

    for stream in STREAMS:
        config = (await js.stream_info(stream.name)).config
        assert config.subjects == [f"retail.{stream.name.lower()}.v1.>"]
        assert config.storage == api.StorageType.FILE
        assert config.discard == api.DiscardPolicy.NEW
        assert config.deny_delete and config.deny_purge
        assert config.duplicate_window == 120
        assert config.max_age == 7 * 24 * 3600
        assert config.max_msg_size == 256 * 1024
        assert config.num_replicas == 1
    consumer = (await js.consumer_info("ORDERS", "erp-worker")).config
    assert consumer.durable_name == "erp-worker"
    assert consumer.ack_policy == api.AckPolicy.EXPLICIT
    assert consumer.max_deliver == 5
    assert consumer.backoff == [30, 30, 60]  # never below ack_wait: a slow handler is not redelivered
    assert consumer.ack_wait == 30
    assert consumer.max_ack_pending == 128
    assert consumer.filter_subjects == ["retail.orders.v1.OrderAccepted"]


async def test_provisioning_again_is_idempotent_and_applies_changed_settings(nc):
    js = nc.jetstream()
    spec = ConsumerSpec(
        durable="worker",
        stream=TEST_STREAM.name,
        filter_subjects=(SUBJECT,),
        max_deliver=3,
        backoff=(1,),
        ack_wait=1,
    )
    first = await provision(js, [TEST_STREAM], [spec])

    again = await provision(js, [TEST_STREAM], [spec])
    changed = await provision(
        js,
        [TEST_STREAM.__class__(**{**TEST_STREAM.__dict__, "max_age": 3600.0})],
        [ConsumerSpec(**{**spec.__dict__, "max_deliver": 6})],
    )

    assert first.created == [TEST_STREAM.name]
    assert again.created == [] and changed.created == []
    assert (await js.stream_info(TEST_STREAM.name)).config.max_age == 3600
    assert (await js.consumer_info(TEST_STREAM.name, "worker")).config.max_deliver == 6
    assert len(await js.streams_info()) == 1
