"""Durable reminders: they fire when due, survive restarts, can be cancelled and fire once per replica set."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy import text

from libs.actors import MIGRATIONS, Actor, ActorMetrics, ActorRuntime, Reminder, Turn
from libs.store import Database, upgrade
from tests.integration.actors.conftest import ManualClock, wait_until

pytestmark = pytest.mark.timeout(60)


class Timeouts(BaseModel):
    fired: list[str] = []
    payloads: list[Any] = []


@dataclass(frozen=True)
class Remind:
    name: str
    due_in: float
    payload: Any = None


@dataclass(frozen=True)
class Cancel:
    name: str


@dataclass(frozen=True)
class Get:
    """Reply with the names fired so far (after every earlier message's turn has committed)."""


@dataclass(frozen=True)
class Block:
    entered: asyncio.Event
    gate: asyncio.Event


class OrderTimeoutActor(Actor[Timeouts]):
    """Sets, cancels and records reminders; `handled` counts handler runs across runtimes."""

    kind = "order-timeout"
    state_type = Timeouts
    handled: Tally[tuple[str, str]]

    def __init__(self, handled: Tally[tuple[str, str]] | None = None) -> None:
        self.handled = Tally() if handled is None else handled

    async def receive(self, message: Any, ctx: Turn[Timeouts]) -> Any:
        if isinstance(message, Remind):
            ctx.set_reminder(message.name, due_in=message.due_in, payload=message.payload)
        elif isinstance(message, Cancel):
            ctx.cancel_reminder(message.name)
        elif isinstance(message, Reminder):
            self.handled[(ctx.key, message.name)] += 1
            ctx.state.fired.append(message.name)
            ctx.state.payloads.append(message.payload)
        elif isinstance(message, Block):
            message.entered.set()
            await message.gate.wait()
        return list(ctx.state.fired)


async def _reminder_rows(db: Database) -> int:
    async with db.read() as session:
        return (await session.execute(text("SELECT count(*) FROM actor_reminder"))).scalar_one()


async def test_a_reminder_fires_when_due_and_only_then(db: Database, clock: ManualClock):
    actor = OrderTimeoutActor()
    runtime = await ActorRuntime(db, [actor], reminder_poll_s=None, clock=clock).start()
    ref = runtime.ref("order-timeout", "order-1")
    await ref.ask(Remind("erp-ack-timeout", due_in=60, payload={"order": "order-1", "attempt": 1}))

    early = await runtime.fire_due_reminders()
    clock.advance(61)
    due = await runtime.fire_due_reminders()
    await wait_until(lambda: actor.handled[("order-1", "erp-ack-timeout")] == 1)
    await ref.ask(Get())  # that turn has committed

    assert (early, due) == (0, 1)
    state = await runtime.stored_state("order-timeout", "order-1")
    assert state.fired == ["erp-ack-timeout"]
    assert state.payloads == [{"order": "order-1", "attempt": 1}]
    assert await _reminder_rows(db) == 0  # deleted by the turn that handled it
    assert await runtime.fire_due_reminders() == 0
    await runtime.stop()


async def test_the_background_poller_delivers_due_reminders(db: Database, clock: ManualClock):
    actor = OrderTimeoutActor()
    runtime = await ActorRuntime(db, [actor], reminder_poll_s=0.01, clock=clock).start()

    ref = runtime.ref("order-timeout", "order-2")
    await ref.ask(Remind("ship-timeout", due_in=0))
    await wait_until(lambda: actor.handled[("order-2", "ship-timeout")] == 1)

    assert await ref.ask(Get()) == ["ship-timeout"]
    await runtime.stop()


async def test_a_reminder_survives_a_restart(db: Database, clock: ManualClock):
    before = await ActorRuntime(db, [OrderTimeoutActor()], reminder_poll_s=None, clock=clock).start()
    await before.ref("order-timeout", "order-3").ask(Remind("3pl-ack-timeout", due_in=3600))
    await before.stop()
    await db.dispose()

    clock.advance(3601)
    restarted_db = Database(db.url)
    await upgrade(restarted_db, [MIGRATIONS])
    actor = OrderTimeoutActor()
    after = await ActorRuntime(restarted_db, [actor], reminder_poll_s=0.01, clock=clock).start()
    await wait_until(lambda: actor.handled[("order-3", "3pl-ack-timeout")] == 1)

    assert await after.ref("order-timeout", "order-3").ask(Get()) == ["3pl-ack-timeout"]
    await after.stop()
    await restarted_db.dispose()


async def test_a_cancelled_reminder_never_fires(db: Database, clock: ManualClock):
    actor = OrderTimeoutActor()
    runtime = await ActorRuntime(db, [actor], reminder_poll_s=None, clock=clock).start()
    ref = runtime.ref("order-timeout", "order-4")
    await ref.ask(Remind("payment-timeout", due_in=60))
    await ref.ask(Remind("keep", due_in=60))

    await ref.ask(Cancel("payment-timeout"))
    clock.advance(61)
    fired = await runtime.fire_due_reminders()
    await wait_until(lambda: actor.handled[("order-4", "keep")] == 1)

    assert fired == 1
    assert await ref.ask(Get()) == ["keep"]
    assert actor.handled[("order-4", "payment-timeout")] == 0
    await runtime.stop()


async def test_setting_a_reminder_again_replaces_it(db: Database, clock: ManualClock):
    actor = OrderTimeoutActor()
    runtime = await ActorRuntime(db, [actor], reminder_poll_s=None, clock=clock).start()
    ref = runtime.ref("order-timeout", "order-5")
    await ref.ask(Remind("sla", due_in=60))

    await ref.ask(Remind("sla", due_in=600))
    clock.advance(61)
    early = await runtime.fire_due_reminders()
    clock.advance(600)
    late = await runtime.fire_due_reminders()
    await wait_until(lambda: actor.handled[("order-5", "sla")] == 1)

    assert (early, late) == (0, 1)
    await runtime.stop()


async def test_a_reminder_cancelled_after_it_was_claimed_is_not_handled(db: Database, clock: ManualClock):
    registry = CollectorRegistry()
    actor = OrderTimeoutActor()
    runtime = await ActorRuntime(
        db, [actor], reminder_poll_s=None, clock=clock, metrics=ActorMetrics(registry)
    ).start()
    ref = runtime.ref("order-timeout", "order-6")
    await ref.ask(Remind("erp-ack-timeout", due_in=60))
    clock.advance(61)
    entered, gate = asyncio.Event(), asyncio.Event()
    await ref.tell(Block(entered, gate))
    await entered.wait()
    await ref.tell(Cancel("erp-ack-timeout"))  # queued behind Block

    poll = asyncio.create_task(runtime.fire_due_reminders())  # claims it; queued behind Cancel
    if db.dialect == "sqlite":
        gate.set()  # the poll waits for the writer lock that Block's turn holds
    assert await poll == 1
    gate.set()
    fired = await ref.ask(Get())

    assert fired == []
    assert actor.handled[("order-6", "erp-ack-timeout")] == 0
    skipped = registry.get_sample_value("actor_turns_total", {"kind": "order-timeout", "outcome": "skipped"})
    assert skipped == 1  # it was delivered, and recognised as cancelled
    await runtime.stop()


async def test_a_failed_reminder_turn_fires_again_after_the_lease(db: Database, clock: ManualClock):
    class Flaky(OrderTimeoutActor):
        failures = 1

        async def receive(self, message: Any, ctx: Turn[Timeouts]) -> Any:
            if isinstance(message, Reminder) and self.failures:
                self.failures -= 1
                raise ConnectionError("ERP down")
            return await super().receive(message, ctx)

    actor = Flaky()
    runtime = await ActorRuntime(db, [actor], reminder_poll_s=None, clock=clock, reminder_lease_s=30).start()
    ref = runtime.ref("order-timeout", "order-7")
    await ref.ask(Remind("retry", due_in=1))
    clock.advance(2)
    assert await runtime.fire_due_reminders() == 1
    await wait_until(lambda: actor.failures == 0)
    await ref.ask(Get())  # the failed turn is over once this replies

    within_lease = await runtime.fire_due_reminders()
    clock.advance(31)
    after_lease = await runtime.fire_due_reminders()
    await wait_until(lambda: actor.handled[("order-7", "retry")] == 1)

    assert (within_lease, after_lease) == (0, 1)
    await runtime.stop()


async def test_a_reminder_fires_once_with_two_replicas_on_one_postgres(postgres_url: str, clock: ManualClock):
    db_a, db_b = Database(postgres_url), Database(postgres_url)
    await upgrade(db_a, [MIGRATIONS])
    handled: Tally[tuple[str, str]] = Tally()
    replica_a = await ActorRuntime(
        db_a, [OrderTimeoutActor(handled)], reminder_poll_s=None, clock=clock, reminder_batch=10
    ).start()
    replica_b = await ActorRuntime(
        db_b, [OrderTimeoutActor(handled)], reminder_poll_s=None, clock=clock, reminder_batch=10
    ).start()
    keys = [f"order-{i}" for i in range(40)]
    await asyncio.gather(*(replica_a.ref("order-timeout", k).ask(Remind("timeout", due_in=60)) for k in keys))
    clock.advance(61)

    claims = 0
    for _ in range(8):  # small batches and many concurrent polls: claims overlap
        results = await asyncio.gather(
            *(replica.fire_due_reminders() for replica in (replica_a, replica_b) for _ in range(4))
        )
        claims += sum(results)
    await wait_until(lambda: len(handled) == len(keys))
    for replica in (replica_a, replica_b):
        for key in keys:
            await replica.ref("order-timeout", key).ask(Get())  # both mailboxes are drained

    assert claims == len(keys)
    assert set(handled.values()) == {1}
    assert await _reminder_rows(db_a) == 0
    await replica_a.stop()
    await replica_b.stop()
    await db_a.dispose()
    await db_b.dispose()


async def test_turn_now_and_reminder_times_come_from_the_injected_clock(db: Database, clock: ManualClock):
    runtime = await ActorRuntime(db, [OrderTimeoutActor()], reminder_poll_s=None, clock=clock).start()

    await runtime.ref("order-timeout", "order-8").ask(Remind("sla", due_in=90))

    async with db.read() as session:
        due_at = (await session.execute(text("SELECT due_at FROM actor_reminder"))).scalar_one()
    # SQLite returns text; compare the instant, not the representation.
    expected = clock.current + timedelta(seconds=90)
    assert str(due_at).startswith(expected.strftime("%Y-%m-%d %H:%M:%S"))
    await runtime.stop()
