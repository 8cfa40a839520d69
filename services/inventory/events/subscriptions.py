"""What inventory does on order and shipment events (durable consumer `inventory`).

Releases on OrderRejected, OrderCancelled and OrderLinesCancelled, commits on
OrderReleasedToWarehouse, consumes on ShipmentConfirmed: the same ledger steps as the Release and
Commit RPCs, in the delivery's transaction, so the inbox row and the stock change commit together
and a redelivered event changes nothing. A shipment's `shipped_at` goes with it, so a confirmation
arriving after a warehouse count that already missed those units is not counted twice (I5).
"""

from __future__ import annotations

from datetime import UTC

from google.protobuf.message import Message

from libs.bus import Permanent, Subscription
from libs.bus.consumer import MessageContext
from retail.orders.v1 import events_pb2 as orders
from retail.shipments.v1 import events_pb2 as shipments
from services.inventory.domain.position import StockError
from services.inventory.ledger import Ledger, Work

DURABLE = "inventory"


class StockEvents:
    """Handlers of the events inventory consumes.

    Attributes:
        ledger: set by app.py once the bus (whose outbox the ledger writes to) exists.
    """

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger

    def subscriptions(self) -> list[Subscription]:
        """One durable consumer named `inventory` per stream read (ORDERS, SHIPMENTS)."""
        return [
            Subscription(
                DURABLE,
                [
                    orders.OrderRejected,
                    orders.OrderCancelled,
                    orders.OrderLinesCancelled,
                    orders.OrderReleasedToWarehouse,
                ],
                self.on_order_event,
                hop="inventory.orders",
            ),
            Subscription(DURABLE, [shipments.ShipmentConfirmed], self.on_shipment, hop="inventory.shipments"),
        ]

    async def on_order_event(self, event: Message, ctx: MessageContext) -> None:
        """Release or commit the order's reservations."""
        ledger = self._ledger()

        async def work(unit: Work) -> None:
            if isinstance(event, orders.OrderRejected):
                lines = [(line_id, 0, "") for line_id in event.line_ids]
                await ledger.release(
                    unit, order_id=event.order_id, lines=lines, reason="RELEASE_REASON_ORDER_REJECTED"
                )
            elif isinstance(event, orders.OrderCancelled):
                await ledger.release(
                    unit, order_id=event.order_id, lines=[], reason="RELEASE_REASON_ORDER_CANCELLED"
                )
            elif isinstance(event, orders.OrderLinesCancelled):
                lines = [(line.line_id, line.quantity, "") for line in event.lines]
                await ledger.release(
                    unit, order_id=event.order_id, lines=lines, reason="RELEASE_REASON_LINES_CANCELLED"
                )
            elif isinstance(event, orders.OrderReleasedToWarehouse):
                await ledger.commit(
                    unit,
                    order_id=event.order_id,
                    release_id=event.release_id,
                    location_id=event.location_id,
                    line_ids=[line.line_id for line in event.lines],
                )

        await self._apply(work, ctx)

    async def on_shipment(self, event: shipments.ShipmentConfirmed, ctx: MessageContext) -> None:
        """Consume the shipped quantities from the order's reservations at the shipping location."""
        ledger = self._ledger()
        notice = event.shipment
        shipped: dict[tuple[str, str], int] = {}
        for package in notice.packages:
            for line in package.lines:
                shipped[(line.line_id, line.sku)] = shipped.get((line.line_id, line.sku), 0) + line.quantity
        shipment_id = notice.shipment_id or f"{notice.release_id}:{notice.warehouse_shipment.id}"
        shipped_at = notice.shipped_at.ToDatetime(tzinfo=UTC) if notice.HasField("shipped_at") else None

        async def work(unit: Work) -> None:
            await ledger.consume(
                unit,
                order_id=notice.order_id,
                shipment_id=shipment_id,
                location_id=notice.location_id,
                shipped=shipped,
                shipped_at=shipped_at,
            )

        await self._apply(work, ctx)

    async def _apply(self, work, ctx: MessageContext) -> None:
        try:
            await self._ledger().run(work, session=ctx.session, emit=ctx.emit)
        except StockError as error:
            raise Permanent(f"{error.code}: {error.message}") from error

    def _ledger(self) -> Ledger:
        if self.ledger is None:
            raise RuntimeError("StockEvents used before app.py set its ledger")
        return self.ledger
