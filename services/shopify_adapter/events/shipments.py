"""ShipmentConfirmed → a durable fulfillment job (O6).

The handler only records the job, inside the consumer's inbox transaction, so a redelivered event
adds nothing (inbox) and a second event for the same shipment adds nothing (primary key). The
Admin API calls happen in `sync.fulfillments`, outside any database transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from libs.bus import MessageContext, Subscription
from libs.store import after_commit
from retail.shipments.v1 import events_pb2 as shipment_events
from services.shopify_adapter.store import tables
from services.shopify_adapter.store.queries import insert_if_absent_statements

DURABLE = "shopify-adapter"

# Built once per dialect, on the table, and run as a compiled statement: every ShipmentConfirmed
# runs it, and an ORM statement built per call costs several times its execution (decision 0029).
_RECORD = insert_if_absent_statements(tables.FulfillmentJob.__table__, ["shipment_id"])


def shipment_subscription(on_recorded: Callable[[], None] = lambda: None) -> Subscription:
    """The durable consumer of ShipmentConfirmed; `on_recorded` runs after a new job commits."""

    async def on_shipment_confirmed(event: shipment_events.ShipmentConfirmed, ctx: MessageContext) -> None:
        notice = event.shipment
        now = datetime.now(UTC)
        dialect = ctx.session.bind.dialect.name if ctx.session.bind is not None else "sqlite"
        result = await ctx.session.execute(
            _RECORD[dialect],
            {
                "shipment_id": notice.shipment_id or ctx.event_id,
                "order_id": notice.order_id,
                "notice": notice.SerializeToString(),
                "correlation_id": ctx.correlation_id,
                "causation_id": ctx.event_id,
                "status": tables.PENDING,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            },
        )
        if result.rowcount:
            after_commit(ctx.session, on_recorded)

    return Subscription(
        durable=DURABLE,
        filter_subjects=[shipment_events.ShipmentConfirmed],
        handler=on_shipment_confirmed,
        ack_wait=30.0,
    )
