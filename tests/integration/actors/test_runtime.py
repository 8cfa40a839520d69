"""The actor runtime on SQLite and PostgreSQL: activation, turns, supervision, passivation, replicas."""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter as Tally
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy import String, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.actors import (
    MIGRATIONS,
    Actor,
    ActorMetrics,
    ActorRuntime,
    ConflictError,
    RuntimeStoppedError,
    Turn,
)
from libs.store import Database, upgrade
from tests.integration.actors.conftest import wait_until

pytestmark = pytest.mark.timeout(60)

# -- a counter actor exercising what services do ----------------------------------------------


class Counter(BaseModel):
    owner: str
    value: int = 0


@dataclass(frozen=True)
class Add:
    by: int


@dataclass(frozen=True)
class Get:
    pass


@dataclass(frozen=True)
class FailAfterWriting:
    """Mutate state, write a row and set a reminder through the turn, then raise."""


@dataclass(frozen=True)
class Block:
    """Hold the turn open until the test opens `gate`."""

    entered: asyncio.Event
    gate: asyncio.Event


@dataclass(frozen=True)
class Overwrite:
    value: int


class CounterActor(Actor[Counter]):
    kind = "counter"
    state_type = Counter

    def initial_state(self, key: str) -> Counter:
        return Counter(owner=key)

    async def receive(self, message: Any, ctx: Turn[Counter]) -> Any:
        if isinstance(message, Add):
            seen = ctx.state.value
            await asyncio.sleep(0)  # let every other task run between the read and the write
            ctx.state.value = seen + message.by
            return ctx.state.value
        if isinstance(message, Get):
            return ctx.state.value
        if isinstance(message, Overwrite):
            ctx.state.value = message.value
            return message.value
        if isinstance(message, FailAfterWriting):
            ctx.state.value += 100
            await ctx.session.execute(text("INSERT INTO side_effect (note) VALUES ('half-written')"))
            ctx.set_reminder("never", due_in=1)
            raise ValueError("tax jurisdiction rejected")
        if isinstance(message, Block):
            message.entered.set()
            await message.gate.wait()
            return "released"
        raise TypeError(f"unexpected {message!r}")


async def _migrated(url: Any) -> Database:
    database = Database(url)
    await upgrade(database, [MIGRATIONS])
    return database


async def _stored_row_count(db: Database, table: str) -> int:
    async with db.read() as session:
        return (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# -- activation and persistence ---------------------------------------------------------------


async def test_first_message_activates_the_actor_with_its_initial_state(db: Database):
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-1")
    assert not runtime.is_active("counter", "order-1")

    value = await ref.ask(Get())

    assert value == 0
    assert runtime.is_active("counter", "order-1")
    assert await _stored_row_count(db, "actor_state") == 0  # a read-only turn creates no row
    assert await ref.ask(Add(3)) == 3
    assert await runtime.stored_state("counter", "order-1") == Counter(owner="order-1", value=3)
    await runtime.stop()


async def test_state_is_saved_every_turn_and_a_new_runtime_sees_it(db: Database):
    first = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    for by in (1, 2, 4):
        await first.ref("counter", "order-7").ask(Add(by))
    await first.stop()
    await db.dispose()

    second_db = await _migrated(db.url)
    second = await ActorRuntime(second_db, [CounterActor], reminder_poll_s=None).start()
    value = await second.ref("counter", "order-7").ask(Get())

    assert value == 7
    await second.stop()
    await second_db.dispose()


# -- one message at a time per key --------------------------------------------------------------


async def test_two_hundred_concurrent_asks_to_one_key_lose_no_update(db: Database):
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "sku-1@loc-1")

    replies = await asyncio.gather(*(ref.ask(Add(1)) for _ in range(200)))

    assert sorted(replies) == list(range(1, 201))
    assert await ref.ask(Get()) == 200
    assert (await runtime.stored_state("counter", "sku-1@loc-1")).value == 200
    await runtime.stop()


class OverlapProbe(BaseModel):
    turns: int = 0


class OverlapActor(Actor[OverlapProbe]):
    """Records how many handlers run at once, per key and overall."""

    kind = "overlap"
    state_type = OverlapProbe

    def __init__(self) -> None:
        self.running: Tally[str] = Tally()
        self.max_per_key = 0
        self.max_overall = 0

    async def receive(self, message: Any, ctx: Turn[OverlapProbe]) -> None:
        self.running[ctx.key] += 1
        self.max_per_key = max(self.max_per_key, self.running[ctx.key])
        self.max_overall = max(self.max_overall, sum(self.running.values()))
        for _ in range(3):
            await asyncio.sleep(0)
        ctx.state.turns += 1
        self.running[ctx.key] -= 1


async def test_handlers_of_one_key_never_overlap_while_different_keys_share_transactions(postgres_url: str):
    # Turns of different keys waiting at the same moment run one after the other in one group
    # transaction (libs.store.group); turns of one key never overlap.
    db = await _migrated(postgres_url)
    probe = OverlapActor()
    runtime = await ActorRuntime(db, [probe], reminder_poll_s=None).start()
    keys = [f"order-{i}" for i in range(4)]

    await asyncio.gather(*(runtime.ref("overlap", key).ask("go") for key in keys for _ in range(30)))

    assert probe.max_per_key == 1
    assert db.group.stats.units == 120
    assert db.group.stats.transactions < 120
    for key in keys:
        assert (await runtime.stored_state("overlap", key)).turns == 30
    await runtime.stop()
    await db.dispose()


# -- supervision ----------------------------------------------------------------------------------


async def test_handler_exception_rolls_back_the_turn_and_the_actor_continues_from_storage(db: Database):
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE side_effect (note VARCHAR(40))"))
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-9")
    await ref.ask(Add(5))

    with pytest.raises(ValueError, match="tax jurisdiction rejected"):
        await ref.ask(FailAfterWriting())

    assert await _stored_row_count(db, "side_effect") == 0
    assert await _stored_row_count(db, "actor_reminder") == 0
    assert (await runtime.stored_state("counter", "order-9")).value == 5
    assert await ref.ask(Get()) == 5  # the in-memory +100 was discarded, not kept
    assert await ref.ask(Add(1)) == 6
    await runtime.stop()


async def test_a_told_message_that_fails_is_logged_and_the_actor_keeps_serving(
    db: Database, caplog: pytest.LogCaptureFixture
):
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE side_effect (note VARCHAR(40))"))
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-10")

    await ref.tell(FailAfterWriting())
    value = await ref.ask(Add(2))

    assert value == 2
    assert any("FailAfterWriting" in record.getMessage() for record in caplog.records)
    await runtime.stop()


class _TestBase(DeclarativeBase):
    """Kept apart from `libs.store.Base` so test tables never reach a service's migrations."""


class ShippedLine(_TestBase):
    __tablename__ = "shipped_line"

    line_id: Mapped[str] = mapped_column(String(40), primary_key=True)


@dataclass(frozen=True)
class Ship:
    line_id: str


class ShipperActor(CounterActor):
    """Adds an ORM row per shipped line, as `Outbox.add` does, and counts the lines."""

    async def receive(self, message: Any, ctx: Turn[Counter]) -> Any:
        if isinstance(message, Ship):
            ctx.session.add(ShippedLine(line_id=message.line_id))
            ctx.state.value += 1
            return ctx.state.value
        return await super().receive(message, ctx)


async def test_orm_rows_added_in_a_turn_commit_with_the_state_and_their_errors_are_the_handlers(db: Database):
    async with db.engine.begin() as connection:
        await connection.run_sync(_TestBase.metadata.create_all)
    runtime = await ActorRuntime(db, [ShipperActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-12")
    await ref.ask(Ship("line-1"))

    with pytest.raises(IntegrityError):
        await ref.ask(Ship("line-1"))  # the same line twice: the handler's error, not a conflict

    assert await _stored_row_count(db, "shipped_line") == 1
    assert await ref.ask(Get()) == 1
    assert await ref.ask(Ship("line-2")) == 2
    assert await _stored_row_count(db, "shipped_line") == 2
    await runtime.stop()


# -- passivation -----------------------------------------------------------------------------------


async def test_idle_actor_is_passivated_and_reactivated_from_storage(db: Database):
    registry = CollectorRegistry()
    runtime = ActorRuntime(
        db, [CounterActor], idle_after_s=0.05, reminder_poll_s=None, metrics=ActorMetrics(registry)
    )
    await runtime.start()
    ref = runtime.ref("counter", "order-3")
    await ref.ask(Add(2))

    await wait_until(lambda: not runtime.is_active("counter", "order-3"))
    # Another replica moves the actor on while it is passive.
    async with db.transaction() as session:
        await session.execute(
            text(
                "UPDATE actor_state SET state_json = :json, version = version + 1 "
                "WHERE kind = 'counter' AND key = 'order-3'"
            ),
            {"json": Counter(owner="order-3", value=40).model_dump_json()},
        )
    value = await ref.ask(Get())

    assert value == 40
    assert _sample(registry, "actor_activations_total", kind="counter") == 2
    # Reactivation read the row; a stale in-memory copy would have shown up as a conflict.
    assert _sample(registry, "actor_conflicts_total", kind="counter") == 0
    assert _sample(registry, "actor_active", kind="counter") == 1
    await runtime.stop()


# -- several replicas -------------------------------------------------------------------------------


async def test_two_replicas_hammering_one_key_lose_no_update(db: Database):
    registries = CollectorRegistry(), CollectorRegistry()
    other_db = await _migrated(db.url)
    replica_a = await ActorRuntime(
        db, [CounterActor], reminder_poll_s=None, metrics=ActorMetrics(registries[0])
    ).start()
    replica_b = await ActorRuntime(
        other_db, [CounterActor], reminder_poll_s=None, metrics=ActorMetrics(registries[1])
    ).start()
    a, b = replica_a.ref("counter", "sku-9@loc-1"), replica_b.ref("counter", "sku-9@loc-1")

    replies = await asyncio.gather(*(ref.ask(Add(1)) for _ in range(100) for ref in (a, b)))

    assert sorted(replies) == list(range(1, 201))
    assert (await replica_a.stored_state("counter", "sku-9@loc-1")).value == 200
    assert await b.ask(Get()) == 200
    # The replicas really raced (otherwise this test proves nothing about the version check).
    assert sum(_sample(r, "actor_conflicts_total", kind="counter") for r in registries) > 0
    await replica_a.stop()
    await replica_b.stop()
    await other_db.dispose()


async def test_a_read_only_turn_sees_what_another_replica_committed(db: Database):
    other_db = await _migrated(db.url)
    replica_a = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    replica_b = await ActorRuntime(other_db, [CounterActor], reminder_poll_s=None).start()
    await replica_a.ref("counter", "order-11").ask(Add(1))  # replica A now caches value 1

    await replica_b.ref("counter", "order-11").ask(Add(5))
    seen_by_a = await replica_a.ref("counter", "order-11").ask(Get())

    assert seen_by_a == 6
    await replica_a.stop()
    await replica_b.stop()
    await other_db.dispose()


async def test_a_turn_that_keeps_losing_the_race_raises_conflict_error(postgres_url: str):
    # PostgreSQL only: SQLite's one writer keeps a second transaction out of a running turn.
    db = await _migrated(postgres_url)

    BUMP_VERSION = "UPDATE actor_state SET version = version + 1 WHERE kind = 'counter' AND key = 'k'"

    class Meddler(CounterActor):
        """On Add, commits a change to its row from another transaction before the turn saves."""

        async def receive(self, message: Any, ctx: Turn[Counter]) -> Any:
            if isinstance(message, Add):
                async with db.transaction() as session:
                    await session.execute(text(BUMP_VERSION))
            return await super().receive(message, ctx)

    seed = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    await seed.ref("counter", "k").ask(Add(1))
    await seed.stop()
    # With retries, the retry locks the row and the meddler would wait for it: no more losing.
    runtime = await ActorRuntime(db, [Meddler], reminder_poll_s=None, max_conflict_retries=0).start()
    ref = runtime.ref("counter", "k")

    with pytest.raises(ConflictError):
        await ref.ask(Add(1))

    assert await ref.ask(Get()) == 1  # nothing of the failed turns was kept
    await runtime.stop()
    await db.dispose()


# -- back-pressure and shutdown ------------------------------------------------------------------


async def test_a_full_mailbox_makes_senders_wait(sqlite_url: str):
    db = await _migrated(sqlite_url)
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None, mailbox_size=2).start()
    ref = runtime.ref("counter", "order-5")
    entered, gate = asyncio.Event(), asyncio.Event()
    await ref.tell(Block(entered, gate))
    await entered.wait()
    await ref.tell(Add(1))
    await ref.tell(Add(1))

    third = asyncio.create_task(ref.tell(Add(1)))
    for _ in range(20):
        await asyncio.sleep(0)
    waited = not third.done()
    gate.set()
    await asyncio.wait_for(third, 10)

    assert waited
    assert await ref.ask(Get()) == 3
    await runtime.stop()
    await db.dispose()


async def test_stop_finishes_in_flight_turns_and_refuses_new_messages(sqlite_url: str):
    db = await _migrated(sqlite_url)
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-6")
    entered, gate = asyncio.Event(), asyncio.Event()
    blocked = asyncio.create_task(ref.ask(Block(entered, gate)))
    await entered.wait()
    queued = asyncio.create_task(ref.ask(Add(4)))
    await wait_until(lambda: runtime._active[("counter", "order-6")].pending == 2)

    stopping = asyncio.create_task(runtime.stop())
    await wait_until(lambda: not runtime._running)
    with pytest.raises(RuntimeStoppedError):
        await ref.tell(Add(1))
    gate.set()
    await stopping

    assert await blocked == "released"
    assert await queued == 4
    assert runtime.active_count == 0
    assert (await runtime.stored_state("counter", "order-6")).value == 4
    await db.dispose()


async def test_ask_with_a_timeout_drops_a_message_whose_turn_had_not_started(sqlite_url: str):
    db = await _migrated(sqlite_url)
    runtime = await ActorRuntime(db, [CounterActor], reminder_poll_s=None).start()
    ref = runtime.ref("counter", "order-8")
    entered, gate = asyncio.Event(), asyncio.Event()
    blocked = asyncio.create_task(ref.ask(Block(entered, gate)))
    await entered.wait()

    with pytest.raises(TimeoutError):
        await ref.ask(Add(1), timeout=0.05)
    gate.set()
    await blocked

    assert await ref.ask(Get()) == 0
    await runtime.stop()
    await db.dispose()


_REQUEST_SCOPED: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_scoped", default=None)


class ContextProbe(BaseModel):
    """What a turn saw of its caller's context."""

    seen: list[str | None] = []


class ContextProbeActor(Actor[ContextProbe]):
    kind = "context-probe"
    state_type = ContextProbe

    async def receive(self, message: Any, ctx: Turn[ContextProbe]) -> Any:
        ctx.state.seen.append(_REQUEST_SCOPED.get())
        return list(ctx.state.seen)


async def test_turns_never_see_the_request_scoped_context_of_the_call_that_activated_the_actor(db):
    async with ActorRuntime(db, [ContextProbeActor]) as runtime:
        token = _REQUEST_SCOPED.set("first caller's deadline")
        try:
            first = await runtime.ref("context-probe", "k").ask("hello")
        finally:
            _REQUEST_SCOPED.reset(token)
        second = await runtime.ref("context-probe", "k").ask("again")

    assert first == [None]
    assert second == [None, None]
