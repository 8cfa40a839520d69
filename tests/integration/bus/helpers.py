"""Helpers for the bus tests: waiting on conditions, a recording handler, table readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, text

from libs.bus.consumer import MessageContext
from libs.bus.errors import Permanent, Retryable
from libs.bus.tables import DeadLetterRow, HopRow, OutboxRow
from libs.store import Database
from tests.integration.bus.events import TEST_STREAM


async def wait_until(
    condition: Callable[[], Awaitable[Any]],
    *,
    within: float = 15.0,
    interval: float = 0.05,
    what: str = "",
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or condition}")
        await asyncio.sleep(interval)


class Recorder:
    """A handler that writes one `effects` row per call and fails on demand by thing id.

    Behaviours by thing id prefix: `permanent` raises Permanent until `fixed` holds the id;
    `always` always raises RuntimeError; `flaky` raises Retryable on its first delivery after
    writing its effect (which must roll back).
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.fixed: set[str] = set()
        self.contexts: list[MessageContext] = []
        self.on_call: Callable[[Any, MessageContext], Awaitable[None]] | None = None

    async def __call__(self, event: Any, ctx: MessageContext) -> None:
        self.contexts.append(ctx)
        await ctx.session.execute(
            text("INSERT INTO effects (consumer, thing_id, event_id) VALUES (:c, :t, :e)"),
            {"c": self.consumer, "t": event.thing_id, "e": ctx.event_id},
        )
        if self.on_call is not None:
            await self.on_call(event, ctx)
        thing = event.thing_id
        if thing.startswith("permanent") and thing not in self.fixed:
            raise Permanent(f"unknown sku for {thing}")
        if thing.startswith("always"):
            raise RuntimeError(f"handler bug for {thing}")
        if thing.startswith("flaky") and ctx.delivery == 1:
            raise Retryable("ERP answered 503", delay=0.05)


async def effects(db: Database, thing_id: str | None = None, consumer: str | None = None) -> int:
    """How many times handlers applied an effect (for one thing and/or consumer)."""
    query = "SELECT count(*) FROM effects WHERE 1=1"
    params: dict[str, str] = {}
    if thing_id is not None:
        query += " AND thing_id = :t"
        params["t"] = thing_id
    if consumer is not None:
        query += " AND consumer = :c"
        params["c"] = consumer
    async with db.read() as session:
        return (await session.execute(text(query), params)).scalar_one()


async def outbox_rows(db: Database) -> list[OutboxRow]:
    """Every outbox row, oldest first."""
    async with db.read() as session:
        return list((await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())


async def dead_letters(db: Database) -> list[DeadLetterRow]:
    """Every dead letter, oldest first."""
    async with db.read() as session:
        return list((await session.execute(select(DeadLetterRow).order_by(DeadLetterRow.id))).scalars())


async def hops(db: Database, **where: Any) -> list[HopRow]:
    """Hop log rows matching column=value filters, oldest first."""
    query = select(HopRow).order_by(HopRow.id)
    for column, value in where.items():
        query = query.where(getattr(HopRow, column) == value)
    async with db.read() as session:
        return list((await session.execute(query)).scalars())


async def stream_messages(js: Any, stream: str = TEST_STREAM.name) -> int:
    """Messages stored in `stream`."""
    return (await js.stream_info(stream)).state.messages


async def count_rows(db: Database, model: Any) -> int:
    """Rows in a table."""
    async with db.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()
