"""Idempotent consumers: redeliveries applied once, poison dead-lettered, replays, traces, hop log."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.bus import DeadLetters, EventBus, Subscription
from libs.bus.consumer import ACK_TIMEOUT_REASON, MaxDeliveriesWatcher
from libs.bus.envelope import CORRELATION_ID, EVENT_ID, EVENT_TYPE, MSG_ID, new_event_id, stamp_meta
from libs.bus.streams import ConsumerSpec, provision
from libs.telemetry.correlation import correlation_id as current_correlation_id
from libs.telemetry.testing import memory_exporter
from tests.integration.bus.events import SUBJECT, TEST_STREAM, ThingHappened
from tests.integration.bus.helpers import Recorder, dead_letters, effects, hops, outbox_rows, wait_until


def subscription(recorder: Recorder, **overrides) -> Subscription:
    """A fast-retrying subscription for the test event."""
    options = {"ack_wait": 5, "max_deliver": 3, "backoff": (0.05, 0.1)} | overrides
    return Subscription(recorder.consumer, [ThingHappened], recorder, **options)


def bus_for(db, nats_server, *subscriptions: Subscription) -> EventBus:
    return EventBus(
        db,
        nats_server.url,
        name="bus-tests",
        streams=[TEST_STREAM],
        subscriptions=subscriptions,
        poll_interval=0.1,
        retention=None,
    )


async def emit(bus: EventBus, *thing_ids: str, correlation_id: str | None = None) -> list[str]:
    """Commit one event per thing id through the bus's outbox."""
    ids = []
    for thing_id in thing_ids:
        async with bus.db.transaction() as session:
            ids.append(
                await bus.outbox.add(
                    session,
                    ThingHappened(thing_id=thing_id, email="ann@example.com"),
                    key=thing_id,
                    correlation_id=correlation_id,
                )
            )
    return ids


async def drained(bus: EventBus) -> bool:
    """Nothing left to publish, deliver or handle."""
    counts = await bus.relay.counts()
    if counts.get("pending") or counts.get("in_flight"):
        return False
    for consumer in bus.consumers:
        info = await bus.js.consumer_info(consumer.spec.stream, consumer.durable)
        if info.num_pending or info.num_ack_pending or consumer._inflight:
            return False
    return True


def valid_event(thing_id: str) -> ThingHappened:
    """An event with its meta filled, for publishing around the outbox."""
    event = ThingHappened(thing_id=thing_id)
    stamp_meta(event, event_id=new_event_id(), correlation_id="c-1", key=thing_id, producer="bus-tests")
    return event


async def test_a_failed_attempt_rolls_back_and_the_redelivery_is_applied_once(db, nats_server):
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, subscription(recorder)) as bus:
        await emit(bus, "flaky-1")
        await wait_until(lambda: drained(bus), what="handled")
        outcomes = [hop.outcome for hop in await hops(db, hop="thing-worker")]

    assert await effects(db, "flaky-1") == 1  # the first attempt's effect rolled back with it
    # Delivery 1 may run twice: when it shared a group commit (with the relay's own bookkeeping,
    # say), the failed unit runs again alone (libs.store.group).
    assert sorted({ctx.delivery for ctx in recorder.contexts}) == [1, 2]
    assert recorder.contexts[-1].delivery == 2
    assert outcomes == ["retry", "ok"]


async def test_a_redelivery_after_a_lost_ack_is_applied_once(db, nats_server, monkeypatch):
    real_ack = Msg.ack
    lost: list[str] = []

    async def lossy_ack(msg: Msg) -> None:
        if not lost:  # the first ack never reaches the server
            lost.append(msg.subject)
            return
        await real_ack(msg)

    monkeypatch.setattr(Msg, "ack", lossy_ack)
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, subscription(recorder, ack_wait=1)) as bus:
        await emit(bus, "t1")
        await wait_until(lambda: _outcomes(db, ["ok", "duplicate"]), what="redelivered after ack_wait")
        await wait_until(lambda: drained(bus), what="acked")

    assert lost == [SUBJECT]
    assert await effects(db, "t1") == 1


async def test_the_same_event_published_twice_is_applied_once_by_each_consumer(db, nats_server):
    first, second = Recorder("worker-a"), Recorder("worker-b")
    async with bus_for(db, nats_server, subscription(first), subscription(second)) as bus:
        event = valid_event("t1")
        headers = {MSG_ID: event.meta.event_id, EVENT_ID: event.meta.event_id, EVENT_TYPE: SUBJECT}
        await bus.js.publish(SUBJECT, event.SerializeToString(), headers=headers)
        # A copy outside the duplicate window (an outbox republish): new Msg-Id, same event id.
        await bus.js.publish(SUBJECT, event.SerializeToString(), headers={**headers, MSG_ID: "copy"})
        await wait_until(lambda: drained(bus), what="both copies handled")

    assert await effects(db, "t1", "worker-a") == 1
    assert await effects(db, "t1", "worker-b") == 1
    assert sorted(h.outcome for h in await hops(db, hop="worker-a")) == ["duplicate", "ok"]


async def test_poison_messages_are_dead_lettered_with_their_reason_and_the_consumer_keeps_flowing(
    db, nats_server
):
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, subscription(recorder)) as bus:
        js = bus.js
        await emit(bus, "good-1")
        await js.publish(SUBJECT, b"x", headers={MSG_ID: "m-unknown", EVENT_TYPE: "retail.bustest.v1.Nope"})
        await js.publish(SUBJECT, b"\xff\xff\xff", headers={MSG_ID: "m-garbage", EVENT_TYPE: SUBJECT})
        invalid = valid_event("")
        await js.publish(
            SUBJECT, invalid.SerializeToString(), headers={MSG_ID: "m-invalid", EVENT_TYPE: SUBJECT}
        )
        await emit(bus, "permanent-1", "always-1", "good-2")
        await wait_until(lambda: _count(dead_letters(db), 5), what="five dead letters")
        await wait_until(lambda: drained(bus), what="stream drained")

    letters = {letter.event_id: letter for letter in await dead_letters(db)}
    reasons = sorted(letter.reason for letter in letters.values())
    assert any(r.startswith("unknown event type retail.bustest.v1.Nope") for r in reasons)
    assert any(r.startswith("undecodable retail.bustest.v1.ThingHappened") for r in reasons)
    assert any(r.startswith("invalid retail.bustest.v1.ThingHappened") and "thing_id" in r for r in reasons)
    assert any(r == "permanent: unknown sku for permanent-1" for r in reasons)
    always = next(letter for letter in letters.values() if "handler bug for always-1" in letter.reason)
    assert always.reason.startswith("retries exhausted after 3 deliveries")
    assert always.deliveries == 3
    assert letters["m-garbage"].payload == b"\xff\xff\xff"
    assert [await effects(db, t) for t in ("good-1", "good-2", "permanent-1", "always-1")] == [1, 1, 0, 0]
    assert len(await hops(db, outcome="dead_letter")) == 5


async def test_dead_letter_replay_after_a_fix_is_applied_once(db, nats_server):
    worker, auditor = Recorder("thing-worker"), Recorder("auditor")
    auditor.fixed.add("permanent-2")  # only thing-worker fails on it
    async with bus_for(db, nats_server, subscription(worker), subscription(auditor)) as bus:
        [event_id] = await emit(bus, "permanent-2")
        await wait_until(lambda: _count(dead_letters(db), 1), what="dead-lettered")
        await wait_until(lambda: drained(bus), what="drained")
        [letter] = await DeadLetters(db).list(consumer="thing-worker")

        worker.fixed.add("permanent-2")  # the operator fixed the SKU mapping
        first = await bus.dead_letters.replay([letter.id])
        await wait_until(lambda: effects(db, "permanent-2", "thing-worker"), what="replay applied")
        again = await bus.dead_letters.replay(consumer="thing-worker", include_replayed=True)
        await wait_until(
            lambda: _outcomes(db, ["dead_letter", "ok", "duplicate"], "thing-worker"),
            what="second replay seen as a duplicate",
        )
        await wait_until(lambda: drained(bus), what="drained")

    assert first.replayed == [letter.id] and again.replayed == [letter.id]
    [replayed] = await dead_letters(db)
    assert replayed.replay_count == 2 and replayed.replayed_at is not None
    assert letter.event_id == event_id
    assert await effects(db, "permanent-2", "thing-worker") == 1
    # The auditor handled the original once and ignored both replays meant for thing-worker.
    assert await effects(db, "permanent-2", "auditor") == 1
    assert await DeadLetters(db).list() == []  # replayed rows leave the default list


async def test_a_message_whose_last_delivery_timed_out_is_dead_lettered_from_the_advisory(db, nc):
    js = nc.jetstream()
    spec = ConsumerSpec(
        durable="crashy",
        stream=TEST_STREAM.name,
        filter_subjects=(SUBJECT,),
        ack_wait=0.5,
        max_deliver=2,
        backoff=(),
    )
    await provision(js, [TEST_STREAM], [spec])
    watcher = MaxDeliveriesWatcher(db, nc, stream=TEST_STREAM.name, durable="crashy")
    await watcher.start()
    event = valid_event("t1")
    await js.publish(
        SUBJECT,
        event.SerializeToString(),
        headers={MSG_ID: event.meta.event_id, EVENT_TYPE: SUBJECT, CORRELATION_ID: "c-9"},
    )
    worker = await js.pull_subscribe_bind(durable="crashy", stream=TEST_STREAM.name)

    for _ in range(2):  # a worker that takes the message and dies without acking, twice
        [msg] = await worker.fetch(1, timeout=5)
    # The server notices the exhausted message when the next pull asks for work (as a running
    # consumer's fetch loop always does), and publishes the advisory then.
    with pytest.raises(TimeoutError):
        await worker.fetch(1, timeout=2)
    await wait_until(lambda: _count(dead_letters(db), 1), what="advisory dead letter")
    await watcher.stop()

    [letter] = await dead_letters(db)
    assert (letter.consumer, letter.stream_seq, letter.deliveries) == ("crashy", 1, 2)
    assert letter.reason == ACK_TIMEOUT_REASON
    assert letter.payload == event.SerializeToString() and letter.event_id == event.meta.event_id
    assert [h.correlation_id for h in await hops(db, outcome="dead_letter")] == ["c-9"]
    assert msg.metadata.num_delivered == 2


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test, from the process-wide exporter every library's tests share."""
    exporter = memory_exporter()
    exporter.clear()
    return exporter


async def test_trace_context_and_correlation_id_survive_publish_to_consume(db, nats_server, spans):
    recorder = Recorder("thing-worker")
    seen: dict[str, object] = {}

    async def follow_up(event, ctx):
        seen["trace_id"] = trace.get_current_span().get_span_context().trace_id
        seen["correlation"] = current_correlation_id.get()
        if event.thing_id == "t1":
            seen["emitted"] = await ctx.emit(ThingHappened(thing_id="t1-next"), key="t1-next")

    recorder.on_call = follow_up
    tracer = trace.get_tracer("tests.bus")
    async with bus_for(db, nats_server, subscription(recorder)) as bus:
        with tracer.start_as_current_span("accept order") as producer:
            await emit(bus, "t1", correlation_id="order-1001")
        await wait_until(lambda: effects(db, "t1-next"), what="follow-up event handled")
        await wait_until(lambda: drained(bus), what="drained")

    trace_id = producer.get_span_context().trace_id
    consumed = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(consumed) == 2
    assert {s.context.trace_id for s in consumed} == {trace_id}  # one order is one trace
    first = next(s for s in consumed if s.parent.span_id == producer.get_span_context().span_id)
    assert first.attributes["retail.correlation_id"] == "order-1001"
    assert seen["trace_id"] == trace_id and seen["correlation"] == "order-1001"
    assert {ctx.correlation_id for ctx in recorder.contexts} == {"order-1001"}
    follow = next(row for row in await outbox_rows(db) if row.id == seen["emitted"])
    assert follow.headers[CORRELATION_ID] == "order-1001"
    assert follow.headers["Retail-Causation-Id"] == recorder.contexts[0].event_id
    assert follow.headers["traceparent"].split("-")[1] == f"{trace_id:032x}"


async def test_hop_log_records_outcome_latency_and_a_redacted_snapshot(db, nats_server):
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, subscription(recorder)) as bus:
        [event_id] = await emit(bus, "t1", correlation_id="order-7")
        await wait_until(lambda: drained(bus), what="handled")

    [hop] = await hops(db, correlation_id="order-7")
    assert (hop.hop, hop.outcome, hop.event_id, hop.attempt) == ("thing-worker", "ok", event_id, 1)
    assert hop.latency_ms > 0
    assert hop.payload_snapshot["thing_id"] == "t1"
    assert "ann@example.com" not in str(hop.payload_snapshot)


async def _count(rows_awaitable, n: int) -> bool:
    return len(await rows_awaitable) >= n


async def _outcomes(db, expected: list[str], hop: str = "thing-worker") -> bool:
    return sorted(h.outcome for h in await hops(db, hop=hop)) == sorted(expected)


async def test_an_event_the_relevance_check_declines_is_acked_without_a_transaction(db, nats_server):
    recorder = Recorder("thing-worker")

    async def relevant(event) -> bool:
        return not event.thing_id.startswith("noise")

    async with bus_for(db, nats_server, subscription(recorder, relevant=relevant)) as bus:
        await emit(bus, "noise-1", "wanted-1", "noise-2")
        await wait_until(lambda: drained(bus), what="all three acknowledged")
        stats = bus.consumers[0].stats.counts

    assert [await effects(db, thing) for thing in ("wanted-1", "noise-1", "noise-2")] == [1, 0, 0]
    assert [hop.outcome for hop in await hops(db, hop="thing-worker")] == ["ok"]
    assert stats == {"ok": 1, "irrelevant": 2}


async def test_a_declined_event_leaves_no_span_and_poison_is_dead_lettered_all_the_same(
    db, nats_server, spans
):
    recorder = Recorder("thing-worker")
    asked: list[str] = []

    async def relevant(event) -> bool:
        asked.append(event.thing_id)
        return not event.thing_id.startswith("noise")

    async with bus_for(db, nats_server, subscription(recorder, relevant=relevant)) as bus:
        await emit(bus, "noise-1", "wanted-1")
        invalid = valid_event("")  # breaks its rules: dead-lettered, never asked about
        await bus.js.publish(
            SUBJECT, invalid.SerializeToString(), headers={MSG_ID: "m-invalid", EVENT_TYPE: SUBJECT}
        )
        await wait_until(lambda: _count(dead_letters(db), 1), what="the invalid event dead-lettered")
        await wait_until(lambda: drained(bus), what="drained")

    assert sorted(asked) == ["noise-1", "wanted-1"]
    [letter] = await dead_letters(db)
    assert letter.event_id == "m-invalid"
    assert letter.reason.startswith("invalid retail.bustest.v1.ThingHappened")
    consumed = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(consumed) == 2  # wanted-1 and the dead letter; the declined one was acked unseen


async def test_acks_waiting_to_share_a_write_are_sent_when_the_consumer_stops(db, nats_server, nc):
    recorder = Recorder("thing-worker")
    bus = bus_for(db, nats_server, subscription(recorder, ack_wait=30))
    async with bus:
        bus.consumers[0]._acks.delay = 60  # an ack would wait a minute for company
        await emit(bus, "t1")
        await wait_until(lambda: effects(db, "t1"), what="handled")
        info = await bus.js.consumer_info(TEST_STREAM.name, "thing-worker")
        assert info.num_ack_pending == 1  # handled, its ack still waiting

    info = await nc.jetstream().consumer_info(TEST_STREAM.name, "thing-worker")
    assert info.num_ack_pending == 0 and info.num_redelivered == 0  # sent on stop, not lost


async def test_a_relevance_check_that_fails_lets_the_handler_decide(db, nats_server):
    recorder = Recorder("thing-worker")

    async def relevant(event) -> bool:
        raise RuntimeError("the read failed")

    async with bus_for(db, nats_server, subscription(recorder, relevant=relevant)) as bus:
        await emit(bus, "t1")
        await wait_until(lambda: effects(db, "t1"), what="handled despite the failed check")
        await wait_until(lambda: drained(bus), what="drained")

    assert [hop.outcome for hop in await hops(db, hop="thing-worker")] == ["ok"]


async def test_one_at_a_time_asks_for_a_batch_and_handles_it_in_stream_order(db, nats_server):
    """concurrency=1 keeps stream order without a pull request per message; contexts stay apart."""
    recorder = Recorder("thing-worker")
    gate = asyncio.Event()
    seen: list[tuple[str, str | None]] = []

    async def relevant(event: ThingHappened) -> bool:
        if event.thing_id == "t-00":
            await gate.wait()  # before its transaction: the others arrive and queue up meanwhile
        return True

    async def on_call(event: ThingHappened, ctx) -> None:
        seen.append((event.thing_id, current_correlation_id.get()))

    recorder.on_call = on_call
    waiting = subscription(recorder, concurrency=1, relevant=relevant)
    async with bus_for(db, nats_server, waiting) as bus:
        consumer = bus.consumers[0]
        await emit(bus, "t-00", correlation_id="c-00")
        await wait_until(lambda: asyncio.sleep(0, bool(consumer._inflight)), what="the first event received")
        requests = consumer._pull.requests
        for i in range(1, 20):
            await emit(bus, f"t-{i:02d}", correlation_id=f"c-{i:02d}")
        await wait_until(lambda: asyncio.sleep(0, len(consumer._queue) == 19), what="the others received")
        gate.set()
        await wait_until(lambda: drained(bus), what="handled")
        asked_meanwhile = consumer._pull.requests - requests

    assert seen == [(f"t-{i:02d}", f"c-{i:02d}") for i in range(20)]
    assert asked_meanwhile <= 2, asked_meanwhile  # one request's credit covered the 19


async def test_a_stopped_consumer_hands_back_what_it_had_not_handled_at_once_and_in_order(db, nats_server):
    """On stop, the queued messages and a handler cut off by the grace are nak'd: the restarted
    consumer gets them at once and in stream order, not after ack_wait (60 s here) (decision
    0041)."""
    recorder = Recorder("thing-worker")
    held, forever = asyncio.Event(), asyncio.Event()
    seen: list[tuple[str, int]] = []

    async def relevant(event: ThingHappened) -> bool:
        if event.thing_id == "t-00" and not held.is_set():
            held.set()
            await forever.wait()  # this process never finishes t-00: the stop's grace cuts it off
        return True

    async def on_call(event: ThingHappened, ctx) -> None:
        seen.append((event.thing_id, ctx.delivery))

    recorder.on_call = on_call
    waiting = subscription(recorder, concurrency=1, relevant=relevant, ack_wait=60)
    async with bus_for(db, nats_server, waiting) as bus:
        consumer = bus.consumers[0]
        await emit(bus, "t-00")
        await wait_until(lambda: asyncio.sleep(0, held.is_set()), what="t-00 being handled")
        await emit(bus, "t-01", "t-02", "t-03")
        await wait_until(lambda: asyncio.sleep(0, len(consumer._queue) == 3), what="the others queued")
        await consumer.stop(grace=0.2)
        handled_before_restart = list(seen)
        await consumer.start()
        # ack_wait would hand them back after 60 s.
        await wait_until(lambda: asyncio.sleep(0, len(seen) == 4), within=20, what="the four handed back")
        await emit(bus, "t-04")
        await wait_until(lambda: drained(bus), what="a newer one after them")

    assert handled_before_restart == []
    assert seen == [("t-00", 2), ("t-01", 2), ("t-02", 2), ("t-03", 2), ("t-04", 1)]  # a nak is a delivery


async def test_a_bus_holding_messages_closes_quietly_when_nats_server_is_gone(db, nats_server):
    """A stop while nats-server is down (the whole host shutting down at once): nothing is handed
    back, the held messages wait for ack_wait on the server, and closing does not raise."""
    recorder = Recorder("thing-worker")
    held, forever = asyncio.Event(), asyncio.Event()

    async def relevant(event: ThingHappened) -> bool:
        if event.thing_id == "t-00":
            held.set()
            await forever.wait()
        return True

    bus = bus_for(db, nats_server, subscription(recorder, concurrency=1, relevant=relevant, ack_wait=60))
    await bus.start()
    try:
        consumer = bus.consumers[0]
        await emit(bus, "t-00")
        await wait_until(lambda: asyncio.sleep(0, held.is_set()), what="t-00 being handled")
        await emit(bus, "t-01", "t-02")
        await wait_until(lambda: asyncio.sleep(0, len(consumer._queue) == 2), what="the others queued")
        nats_server.kill()
        await wait_until(lambda: asyncio.sleep(0, not bus.nc.is_connected), what="the client disconnected")
    finally:
        await asyncio.wait_for(bus.close(grace=0.2), 30)

    assert bus.nc is None


async def test_a_consumer_goes_on_after_nats_server_crashes_and_restarts(db, nats_server):
    """The pull requests die with the server; the consumer asks again once they have certainly
    expired (libs.bus.pull), and what was published before and after the crash is applied once."""
    recorder = Recorder("thing-worker")
    async with bus_for(db, nats_server, subscription(recorder)) as bus:
        await emit(bus, "before-1")
        await wait_until(lambda: drained(bus), what="the first event handled")
        nats_server.kill()
        await asyncio.to_thread(nats_server.start)  # same port, same store
        await emit(bus, "after-1", "after-2")

        async def applied() -> bool:
            return all([await effects(db, thing) == 1 for thing in ("after-1", "after-2")])

        await wait_until(applied, within=20, what="the events after the restart applied")

    assert [await effects(db, thing) for thing in ("before-1", "after-1", "after-2")] == [1, 1, 1]
