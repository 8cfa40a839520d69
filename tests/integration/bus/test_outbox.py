"""The transactional outbox and its relay: nothing published before commit, nothing lost after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nats.js import api

from libs.bus import EventBus, Outbox, OutboxRelay, Subscription
from libs.bus.envelope import CAUSATION_ID, CORRELATION_ID, EVENT_TYPE, MSG_ID, InvalidEvent
from libs.bus.streams import provision
from libs.telemetry.correlation import correlation_id as current_correlation_id
from tests.integration.bus.events import SUBJECT, TEST_STREAM, ThingHappened
from tests.integration.bus.helpers import Recorder, effects, outbox_rows, stream_messages, wait_until


def bus_for(db, nats_server, recorder: Recorder, **options) -> EventBus:
    """An EventBus over the test stream with one recording consumer."""
    return EventBus(
        db,
        nats_server.url,
        name="bus-tests",
        streams=[TEST_STREAM],
        subscriptions=[
            Subscription(
                recorder.consumer, [ThingHappened], recorder, ack_wait=5, max_deliver=3, backoff=(0.05, 0.1)
            )
        ],
        poll_interval=0.1,
        retention=None,
        **options,
    )


async def commit(db, outbox: Outbox, *thing_ids: str) -> list[str]:
    """Commit one ThingHappened per id, each in its own transaction; returns the event ids."""
    ids = []
    for thing_id in thing_ids:
        async with db.transaction() as session:
            ids.append(await outbox.add(session, ThingHappened(thing_id=thing_id), key=thing_id))
    return ids


async def test_event_in_a_rolled_back_transaction_is_never_published(db, nc):
    js = nc.jetstream()
    await provision(js, [TEST_STREAM])
    outbox = Outbox(producer="bus-tests")
    relay = OutboxRelay(db, js, outbox=outbox)

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await outbox.add(session, ThingHappened(thing_id="t1"), key="t1")
            raise RuntimeError("order rejected after the event was staged")
    result = await relay.run_once()

    assert result == (0, 0)
    assert await outbox_rows(db) == []
    assert await stream_messages(js) == 0


async def test_outbox_row_carries_the_envelope_and_stamped_meta(db, nc):
    outbox = Outbox(producer="bus-tests")
    token = current_correlation_id.set("order-1001")
    try:
        async with db.transaction() as session:
            event_id = await outbox.add(
                session, ThingHappened(thing_id="t1"), causation_id="webhook-7", key="t1"
            )
    finally:
        current_correlation_id.reset(token)

    [row] = await outbox_rows(db)
    event = ThingHappened.FromString(row.payload)
    assert row.id == event_id == event.meta.event_id == row.headers[MSG_ID]
    assert row.subject == SUBJECT == row.headers[EVENT_TYPE]
    assert row.headers[CORRELATION_ID] == event.meta.correlation_id == "order-1001"
    assert row.headers[CAUSATION_ID] == event.meta.causation_id == "webhook-7"
    assert (event.meta.key, event.meta.producer, row.status) == ("t1", "bus-tests", "pending")
    assert event.meta.HasField("occurred_at")


async def test_invalid_event_fails_the_producers_transaction(db):
    outbox = Outbox(producer="bus-tests")

    with pytest.raises(InvalidEvent, match="thing_id"):
        async with db.transaction() as session:
            await outbox.add(session, ThingHappened(thing_id=""), key="t1")

    assert await outbox_rows(db) == []


async def test_rows_committed_while_the_relay_was_down_are_published_after_restart_and_applied_once(
    db, nats_server
):
    # The "crashed" relay is simply not running: rows were committed, nothing published them.
    ids = await commit(db, Outbox(producer="bus-tests"), "t1", "t2", "t3")
    assert [row.status for row in await outbox_rows(db)] == ["pending"] * 3
    recorder = Recorder("thing-worker")

    async with bus_for(db, nats_server, recorder) as bus:
        await wait_until(lambda: _all_published(db), what="rows published")
        await wait_until(lambda: _drained(bus), what="consumer drained")

    rows = await outbox_rows(db)
    assert [row.id for row in rows] == ids
    assert [row.stream_seq for row in rows] == [1, 2, 3]  # published in id (= creation) order
    assert [await effects(db, t) for t in ("t1", "t2", "t3")] == [1, 1, 1]


async def test_relay_crash_after_publish_before_mark_is_deduplicated_by_the_server(db, nats_server, nc):
    js = nc.jetstream()
    await provision(js, [TEST_STREAM])
    await commit(db, Outbox(producer="bus-tests"), "t1", "t2")
    crashed = OutboxRelay(db, js, lease=0.3)
    claimed = await crashed.claim()
    first = await crashed.publish(claimed)  # published, then the process dies before settle()
    assert all(isinstance(ack, api.PubAck) for ack in first)
    del crashed
    recorder = Recorder("thing-worker")

    async with bus_for(db, nats_server, recorder) as bus:
        await wait_until(lambda: _all_published(db), what="rows re-published after the lease")
        await wait_until(lambda: _drained(bus), what="consumer drained")

    assert await stream_messages(js) == 2  # the second copies were dropped as duplicates
    assert [row.stream_seq for row in await outbox_rows(db)] == [ack.seq for ack in first]
    assert [await effects(db, "t1"), await effects(db, "t2")] == [1, 1]


async def test_rows_committed_while_nats_is_down_are_published_when_it_returns(db, nats_server):
    recorder = Recorder("thing-worker")
    options = {"relay_options": {"publish_timeout": 0.5, "max_backoff": 0.5}}
    async with bus_for(db, nats_server, recorder, **options) as bus:
        await commit(db, bus.outbox, "before")
        await wait_until(lambda: effects(db, "before"), what="first event handled")

        nats_server.kill()  # kill -9: the store keeps what it fsynced (sync_interval: always)
        await commit(db, bus.outbox, "during-1", "during-2")
        await wait_until(lambda: _attempted(db, 2), what="relay tried and kept the rows")
        nats_server.start()  # same port, same store dir

        await wait_until(lambda: _all_published(db), within=30, what="rows published after restart")
        await wait_until(lambda: effects(db, "during-2"), within=30, what="consumer resumed")
        await wait_until(lambda: _drained(bus), what="consumer drained")
        stored = await stream_messages(bus.js)

    assert stored == 3
    assert [await effects(db, t) for t in ("before", "during-1", "during-2")] == [1, 1, 1]


async def test_publish_errors_keep_rows_pending_with_the_error_until_the_stream_accepts_them(db, nc):
    js = nc.jetstream()
    await commit(db, Outbox(producer="bus-tests"), "t1")
    relay = OutboxRelay(db, js, publish_timeout=1, max_backoff=0.2)

    assert await relay.run_once() == (0, 1)  # no stream captures the subject yet
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error

    await provision(js, [TEST_STREAM])
    await wait_until(lambda: _run_relay(relay), what="row published once the stream exists")
    [row] = await outbox_rows(db)
    assert (row.status, row.stream, row.stream_seq, row.last_error) == (
        "published",
        TEST_STREAM.name,
        1,
        None,
    )


async def test_an_event_larger_than_the_stream_accepts_is_marked_failed_not_dropped(db, nc):
    js = nc.jetstream()
    await provision(js, [TEST_STREAM])
    outbox = Outbox(producer="bus-tests")
    async with db.transaction() as session:
        await outbox.add(session, ThingHappened(thing_id="big", email="x" * (300 * 1024)), key="big")
    relay = OutboxRelay(db, js, publish_timeout=1)

    await relay.run_once()

    [row] = await outbox_rows(db)
    assert row.status == "failed"
    assert "size" in row.last_error.lower()
    assert await stream_messages(js) == 0


async def test_republish_is_harmless_and_purge_keeps_unpublished_rows(db, nats_server):
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, recorder) as bus:
        await commit(db, bus.outbox, "t1")
        await wait_until(lambda: _all_published(db), what="published")
        await wait_until(lambda: _drained(bus), what="handled")

        reset = await bus.relay.republish(since=datetime.now(UTC) - timedelta(minutes=5))
        await wait_until(lambda: _all_published(db), what="re-published")
        await wait_until(lambda: _drained(bus), what="handled again")

        await bus.relay.stop()
        await commit(db, bus.outbox, "t2")  # stays pending: the relay is stopped
        purged = await bus.relay.purge(older_than=timedelta(0))

    assert reset == 1
    assert await effects(db, "t1") == 1
    assert purged == 1
    assert [row.status for row in await outbox_rows(db)] == ["pending"]


async def _all_published(db) -> bool:
    rows = await outbox_rows(db)
    return bool(rows) and all(row.status == "published" for row in rows)


async def _attempted(db, n: int) -> bool:
    rows = [row for row in await outbox_rows(db) if row.status != "published"]
    return len(rows) == n and all(row.attempts >= 1 and row.last_error for row in rows)


async def _drained(bus: EventBus) -> bool:
    consumer = bus.consumers[0]
    info = await bus.js.consumer_info(consumer.spec.stream, consumer.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0 and not consumer._inflight


async def _run_relay(relay: OutboxRelay) -> bool:
    published, _claimed = await relay.run_once()
    return published == 1


async def test_two_relays_claim_disjoint_rows(db, nc):
    js = nc.jetstream()
    outbox = Outbox(producer="bus-tests")
    async with db.transaction() as session:
        for i in range(150):
            await outbox.add(session, ThingHappened(thing_id=f"t{i}"), key=f"t{i}")
    first, second = OutboxRelay(db, js, batch=100), OutboxRelay(db, js, batch=100)

    a, b = await asyncio.gather(first.claim(), second.claim())

    ids_a, ids_b = {row.id for row in a}, {row.id for row in b}
    assert not ids_a & ids_b  # replicas share the work instead of publishing the same rows
    assert len(ids_a | ids_b) == 150
