"""A subscription's runner: the delivery's unit (inbox claim, handler, hop row) run in the
subscriber's own transaction, committed with what the runner writes there, or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from libs.bus import Permanent, Unit
from libs.bus.envelope import EVENT_ID, EVENT_TYPE, MSG_ID
from tests.integration.bus.events import SUBJECT
from tests.integration.bus.helpers import Recorder, dead_letters, effects, hops, wait_until
from tests.integration.bus.test_consumer import _count, bus_for, drained, emit, subscription, valid_event


class OwnTransaction:
    """A runner that opens its own transaction, runs the unit in it, and then writes an effect of
    its own (consumer `runner`), as an actor's turn applies the event after claiming it."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.ran: list[str] = []

    async def __call__(self, event: Any, event_id: str, unit: Unit) -> None:
        self.ran.append(event_id)
        if event.thing_id.startswith("unaddressable"):
            raise Permanent(f"no key for {event.thing_id}")
        async with self.db.transaction() as session:
            await unit(session)
            await session.execute(
                text("INSERT INTO effects (consumer, thing_id, event_id) VALUES ('runner', :t, :e)"),
                {"t": event.thing_id, "e": event_id},
            )


async def test_the_unit_commits_with_what_the_runner_writes_and_a_copy_commits_neither(db, nats_server):
    recorder, runner = Recorder("thing-worker"), OwnTransaction(db)
    async with bus_for(db, nats_server, subscription(recorder, runner=runner)) as bus:
        event = valid_event("t1")
        event_id = event.meta.event_id
        headers = {MSG_ID: event_id, EVENT_ID: event_id, EVENT_TYPE: SUBJECT}
        await bus.js.publish(SUBJECT, event.SerializeToString(), headers=headers)
        await wait_until(lambda: effects(db, "t1", consumer="runner"), what="first copy applied")
        # A copy outside the duplicate window: the inbox claim in the runner's transaction refuses
        # it, and the runner's own write in that transaction is rolled back with it.
        await bus.js.publish(SUBJECT, event.SerializeToString(), headers={**headers, MSG_ID: "copy"})
        await wait_until(lambda: hops(db, outcome="duplicate"), what="copy acked")
        await wait_until(lambda: drained(bus), what="drained")

    assert runner.ran == [event_id, event_id]
    assert await effects(db, "t1", consumer="thing-worker") == 1
    assert await effects(db, "t1", consumer="runner") == 1
    assert sorted(hop.outcome for hop in await hops(db, hop="thing-worker")) == ["duplicate", "ok"]


async def test_a_failing_handler_rolls_back_the_runners_transaction_and_a_runner_may_refuse(db, nats_server):
    recorder, runner = Recorder("thing-worker"), OwnTransaction(db)
    async with bus_for(db, nats_server, subscription(recorder, runner=runner)) as bus:
        await emit(bus, "permanent-1", "flaky-1", "unaddressable-1", "good-1")
        await wait_until(lambda: _count(dead_letters(db), 2), what="two dead letters")
        await wait_until(lambda: drained(bus), what="drained")

    reasons = sorted(letter.reason for letter in await dead_letters(db))
    assert reasons == ["permanent: no key for unaddressable-1", "permanent: unknown sku for permanent-1"]
    # The handler's Permanent and the first Retryable of "flaky" left nothing of their turn.
    for thing, applied in (("permanent-1", 0), ("flaky-1", 1), ("unaddressable-1", 0), ("good-1", 1)):
        assert await effects(db, thing, consumer="runner") == applied, thing
        assert await effects(db, thing, consumer="thing-worker") == applied, thing
