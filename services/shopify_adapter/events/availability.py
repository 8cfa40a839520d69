"""AvailabilityChanged → the wanted Shopify `available` of one SKU at one location (I4).

The handler only records the latest wanted figure, inside the consumer's inbox transaction: one
conditional upsert keyed by (sku, location) that keeps the highest `position_version`, so a
redelivered event changes nothing (inbox), an older event arriving late changes nothing (version),
and rapid changes to one item collapse into one row the pusher sends once. No Shopify call
happens here; `sync.inventory` pushes outside any database transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite

from libs.bus import MessageContext, Subscription
from libs.store import Compiled, after_commit
from retail.inventory.v1 import events_pb2 as inventory_events
from services.shopify_adapter.store import tables
from services.shopify_adapter.translate.inventory import channel_available

DURABLE = "shopify-adapter-inventory"


def _want(dialect: ModuleType) -> Any:
    """The upsert of a wanted figure, built once per dialect and run as a compiled statement
    (libs.store.Compiled): every AvailabilityChanged runs it."""
    table = tables.InventoryPush.__table__
    statement = dialect.insert(table)
    idle = table.c.pushed_version >= table.c.wanted_version
    return Compiled(
        statement.on_conflict_do_update(
            index_elements=["sku", "location_id"],
            set_={
                "wanted_quantity": statement.excluded.wanted_quantity,
                "wanted_version": statement.excluded.wanted_version,
                "wanted_at": statement.excluded.wanted_at,
                "correlation_id": statement.excluded.correlation_id,
                # The oldest change not yet in Shopify stays the lag's start; a row that was up to
                # date starts a new wait (and a new coalescing window).
                "pending_since": case((idle, statement.excluded.pending_since), else_=table.c.pending_since),
                "next_attempt_at": case(
                    (idle, statement.excluded.next_attempt_at), else_=table.c.next_attempt_at
                ),
            },
            where=table.c.wanted_version < statement.excluded.wanted_version,
        )
    )


_WANT = {"sqlite": _want(sqlite), "postgresql": _want(postgresql)}


def availability_subscription(
    channel: str = "online-store",
    *,
    coalesce_s: float = 0.25,
    on_recorded: Callable[[], None] = lambda: None,
) -> Subscription:
    """The durable consumer of AvailabilityChanged.

    Args:
        channel: the mesh channel whose availability Shopify shows.
        coalesce_s: a row that becomes due waits this long for further changes before it is pushed.
        on_recorded: runs after a new wanted figure commits (wakes the pusher).
    """

    async def on_availability_changed(
        event: inventory_events.AvailabilityChanged, ctx: MessageContext
    ) -> None:
        quantity = channel_available(event, channel)
        if quantity is None:
            return
        now = datetime.now(UTC)
        occurred = event.meta.occurred_at.ToDatetime(UTC) if event.meta.HasField("occurred_at") else now
        dialect = ctx.session.bind.dialect.name if ctx.session.bind is not None else "sqlite"
        result = await ctx.session.execute(
            _WANT[dialect],
            {
                "sku": event.sku,
                "location_id": event.location_id.upper(),
                "wanted_quantity": quantity,
                "wanted_version": event.position_version,
                "wanted_at": occurred,
                "pending_since": occurred,
                "correlation_id": ctx.correlation_id or "",
                "pushed_version": -1,
                "attempts": 0,
                "next_attempt_at": now + timedelta(seconds=coalesce_s),
            },
        )
        if result.rowcount:
            after_commit(ctx.session, on_recorded)

    return Subscription(
        durable=DURABLE,
        filter_subjects=[inventory_events.AvailabilityChanged],
        handler=on_availability_changed,
        ack_wait=30.0,
    )
