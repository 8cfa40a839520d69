"""The AvailabilityChanged handler's one conditional upsert, on SQLite and PostgreSQL: the highest
position version wins, and a row already pushed starts a new wait."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from libs import bus
from libs.bus import MessageContext
from libs.store import migrated
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_pb2
from services.shopify_adapter.events.availability import DURABLE, availability_subscription
from services.shopify_adapter.store import MIGRATIONS, tables


def _event(online: int, version: int, at: datetime) -> inventory_events.AvailabilityChanged:
    event = inventory_events.AvailabilityChanged(
        meta=common_pb2.EventMeta(event_id=f"evt-{version}", correlation_id="corr-1", key="SKU-1@EAST"),
        sku="SKU-1",
        location_id="EAST",
        channels=[inventory_pb2.ChannelAvailability(channel="online-store", available=online)],
        position_version=version,
    )
    event.meta.occurred_at.FromDatetime(at)
    return event


async def _handle(db, handler, event) -> None:
    async with db.transaction() as session:
        ctx = MessageContext(
            session=session,
            event_id=event.meta.event_id,
            event_type=event.DESCRIPTOR.full_name,
            subject=event.DESCRIPTOR.full_name,
            headers={},
            correlation_id="corr-1",
            causation_id=None,
            delivery=1,
            stream_seq=1,
            consumer=DURABLE,
        )
        await handler(event, ctx)


async def _row(db) -> tables.InventoryPush:
    async with db.read() as session:
        return await session.get(tables.InventoryPush, ("SKU-1", "EAST"))


async def test_the_highest_position_version_wins_and_a_pushed_row_starts_a_new_wait(database_url):
    handler = availability_subscription(coalesce_s=0).handler
    first_at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    later_at = datetime(2026, 5, 1, 12, 5, tzinfo=UTC)

    async with migrated(database_url, [bus.MIGRATIONS, MIGRATIONS]) as db:
        await _handle(db, handler, _event(10, 2, first_at))
        await _handle(db, handler, _event(12, 5, first_at))
        await _handle(db, handler, _event(40, 4, first_at))  # older, arrives late
        waiting = await _row(db)
        async with db.transaction() as session:  # the pusher pushed version 5
            await session.execute(
                update(tables.InventoryPush).values(pushed_version=5, pushed_quantity=12, pending_since=None)
            )
        await _handle(db, handler, _event(8, 6, later_at))
        again = await _row(db)

    assert (waiting.wanted_quantity, waiting.wanted_version, waiting.pushed_version) == (12, 5, -1)
    assert waiting.pending_since.replace(tzinfo=UTC) == first_at
    assert (again.wanted_quantity, again.wanted_version, again.pushed_version) == (8, 6, 5)
    assert again.pending_since.replace(tzinfo=UTC) == later_at
