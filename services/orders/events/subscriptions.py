"""What the orders service consumes (durable `orders`), and how each fact reaches its order actor.

A fact about one order (the ERP's and the warehouse's answers, a shipment, an invoice) is applied
in that order actor's turn, and the turn also runs the delivery's inbox claim and hop row
(`libs.bus.Subscription.runner`): one transaction, one commit, and a redelivery is refused by the
inbox in the same turn (decision 0044).

A stock change concerns every order waiting for the SKU, so it cannot be one actor's turn: its
handler writes the fact to `order_inbound` for each waiting order in the bus transaction (durable
hand-off, exactly once through the inbox) and, after commit, tells each order actor to `Drain`;
the actor applies the waiting facts in its own turn. `InboundSweeper` re-tells actors whose facts
are still waiting (a crash between commit and tell, or a failed turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import bindparam, insert, select

from libs.bus import MessageContext, Permanent, Subscription, Unit
from libs.store import Compiled, Database, after_commit
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.orders.v1 import events_pb2 as ev
from retail.orders.v1 import orders_pb2
from retail.shipments.v1 import events_pb2 as shipment_events
from services.orders.actors.order import ApplyFact, FactApplier
from services.orders.api.mapping import to_dict
from services.orders.domain import machine
from services.orders.domain.order import Order
from services.orders.store.tables import OrderBackorder, OrderInbound

log = logging.getLogger(__name__)

DURABLE = "orders"


# Built once on the tables and compiled once (libs.store.Compiled): every consumed order fact passes
# here, every stock change asks.
_HAND_OFF = Compiled(insert(OrderInbound.__table__))
_BACKORDERS = OrderBackorder.__table__
_WAITING_QUERY = select(_BACKORDERS.c.order_id).where(_BACKORDERS.c.sku == bindparam("b_sku"))
_WAITING = Compiled(_WAITING_QUERY)
_ANY_WAITING = Compiled(_WAITING_QUERY.limit(1))


def _erp_created(order: Order, e: ev.ErpSalesOrderCreated, event_id: str, now: datetime) -> machine.Outcome:
    return machine.erp_created(order, to_dict(e.erp_sales_order), now, event_id)


def _erp_rejected(order: Order, e: ev.ErpOrderRejected, event_id: str, now: datetime) -> machine.Outcome:
    reason = orders_pb2.RejectionReason.Name(e.reason).removeprefix("REJECTION_REASON_")
    detail = f"{e.erp_reason.code}: {e.erp_reason.message}" if e.HasField("erp_reason") else reason
    return machine.erp_rejected(order, reason, detail, now, event_id)


def _release_accepted(
    order: Order, e: ev.WarehouseReleaseAccepted, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.warehouse_release_accepted(order, e.release_id, now, event_id)


def _release_rejected(
    order: Order, e: ev.WarehouseReleaseRejected, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.warehouse_release_rejected(
        order, e.release_id, e.reason.code, e.reason.message, now, event_id
    )


def _cancel_accepted(
    order: Order, e: ev.WarehouseCancellationAccepted, event_id: str, now: datetime
) -> machine.Outcome:
    lines: dict[str, int] = {}
    for line in e.lines:
        lines[line.line_id] = lines.get(line.line_id, 0) + line.quantity
    return machine.warehouse_cancellation_accepted(order, e.release_id, lines, now, event_id)


def _cancel_rejected(
    order: Order, e: ev.WarehouseCancellationRejected, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.warehouse_cancellation_rejected(
        order, e.release_id, e.reason.code, e.reason.message, now, event_id
    )


def _address_updated(
    order: Order, e: ev.WarehouseAddressUpdated, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.warehouse_address_updated(order, e.release_id, now, event_id)


def _address_rejected(
    order: Order, e: ev.WarehouseAddressUpdateRejected, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.warehouse_address_rejected(
        order, e.release_id, e.reason.code, e.reason.message, now, event_id
    )


def _invoice(order: Order, e: ev.ErpInvoicePosted, event_id: str, now: datetime) -> machine.Outcome:
    return machine.invoice_posted(order, to_dict(e.erp_invoice), to_dict(e.total), e.final, now, event_id)


def _shipment(
    order: Order, e: shipment_events.ShipmentConfirmed, event_id: str, now: datetime
) -> machine.Outcome:
    shipped: dict[str, int] = {}
    for package in e.shipment.packages:
        for line in package.lines:
            shipped[line.line_id] = shipped.get(line.line_id, 0) + line.quantity
    shipment_id = e.shipment.shipment_id or e.shipment.warehouse_shipment.id
    return machine.shipment_confirmed(order, shipment_id, shipped, now, event_id)


def _stock(
    order: Order, e: inventory_events.AvailabilityChanged, event_id: str, now: datetime
) -> machine.Outcome:
    return machine.stock_available(order, e.sku, now, event_id=event_id)


#: Consumed event type -> (message class, domain applier).
APPLIERS: dict[str, tuple[type[Message], FactApplier]] = {
    cls.DESCRIPTOR.full_name: (cls, fn)  # type: ignore[misc]
    for cls, fn in (
        (ev.ErpSalesOrderCreated, _erp_created),
        (ev.ErpOrderRejected, _erp_rejected),
        (ev.WarehouseReleaseAccepted, _release_accepted),
        (ev.WarehouseReleaseRejected, _release_rejected),
        (ev.WarehouseCancellationAccepted, _cancel_accepted),
        (ev.WarehouseCancellationRejected, _cancel_rejected),
        (ev.WarehouseAddressUpdated, _address_updated),
        (ev.WarehouseAddressUpdateRejected, _address_rejected),
        (ev.ErpInvoicePosted, _invoice),
        (shipment_events.ShipmentConfirmed, _shipment),
        (inventory_events.AvailabilityChanged, _stock),
    )
}
ORDER_FACTS = [cls for name, (cls, _) in APPLIERS.items() if name.startswith("retail.orders.")]


def decode_fact(event_type: str, payload: bytes) -> tuple[Message, FactApplier]:
    """The message and applier of an `order_inbound` row."""
    cls, applier = APPLIERS[event_type]
    return cls.FromString(payload), applier


def _order_id(event: Message) -> str:
    if isinstance(event, shipment_events.ShipmentConfirmed):
        return event.shipment.order_id
    return event.order_id


async def _claimed_in_turn(event: Message, ctx: MessageContext) -> None:
    """The handler of an order fact's delivery, which runs inside the order actor's turn: the turn
    applies the fact itself (`ApplyFact`), so the inbox claim and hop row are all there is here."""


class Inbound:
    """The consumer side: order facts applied in their actors' turns, stock changes handed to the
    actors that wait for them, and the sweeper.

    Args:
        db: the service database.
        tell: `tell(order_id)` queues a Drain for the order's actor.
        ask: `ask(order_id, message)` runs a message as a turn of the order's actor and returns
            once it is committed (or raises what the turn raised).
        sweep_s: how often waiting facts are re-told.
    """

    def __init__(
        self,
        db: Database,
        tell: Callable[[str], Awaitable[None]],
        ask: Callable[[str, Any], Awaitable[Any]],
        *,
        sweep_s: float = 2.0,
    ) -> None:
        self.db = db
        self.tell = tell
        self.ask = ask
        self.sweep_s = sweep_s
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def subscriptions(self) -> list[Subscription]:
        """One durable `orders` consumer per stream read (ORDERS, SHIPMENTS, INVENTORY)."""
        return [
            Subscription(DURABLE, ORDER_FACTS, _claimed_in_turn, runner=self.apply_in_turn),
            Subscription(
                DURABLE, [shipment_events.ShipmentConfirmed], _claimed_in_turn, runner=self.apply_in_turn
            ),
            Subscription(
                DURABLE,
                [inventory_events.AvailabilityChanged],
                self.on_availability,
                relevant=self.awaited,
            ),
        ]

    async def awaited(self, event: inventory_events.AvailabilityChanged) -> bool:
        """Whether a backordered order waits for this SKU (most stock changes concern none: they
        are then acknowledged without a transaction). An order backordered just after this read
        is woken by its backorder reminder instead."""
        if event.available_to_sell <= 0:
            return False
        return (await self.db.fetch(_ANY_WAITING, {"b_sku": event.sku})).first() is not None

    async def apply_in_turn(self, event: Message, event_id: str, unit: Unit) -> None:
        """Apply an order fact in its order actor's turn, with the delivery's claim (`unit`)."""
        event_type = event.DESCRIPTOR.full_name
        order_id = _order_id(event)
        if not order_id:
            raise Permanent(f"{event_type} without order id")
        _, apply = APPLIERS[event_type]
        await self.ask(order_id, ApplyFact(event_type, event, apply, event_id, unit))

    async def on_availability(self, event: inventory_events.AvailabilityChanged, ctx: MessageContext) -> None:
        """Stock of a SKU became available: wake the backordered orders that wait for it."""
        if event.available_to_sell <= 0:
            return
        waiting = (await ctx.session.execute(_WAITING, {"b_sku": event.sku})).scalars().all()
        for order_id in waiting:
            await self._hand_off(ctx, order_id, f"{ctx.event_id}:{order_id}"[:64], event)

    async def _hand_off(self, ctx: MessageContext, order_id: str, event_id: str, event: Message) -> None:
        await ctx.session.execute(
            _HAND_OFF,
            {
                "order_id": order_id,
                "event_id": event_id,
                "event_type": event.DESCRIPTOR.full_name,
                "payload": event.SerializeToString(),
                "created_at": datetime.now(UTC),
            },
        )

        def told() -> None:
            task = asyncio.get_running_loop().create_task(self.tell(order_id))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        after_commit(ctx.session, told)

    async def sweep_once(self, older_than_s: float = 1.0) -> int:
        """Tell every actor with facts waiting longer than `older_than_s`; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        async with self.db.read() as session:
            ids = (
                await session.scalars(
                    select(OrderInbound.order_id).where(OrderInbound.created_at <= cutoff).distinct()
                )
            ).all()
        for order_id in ids:
            await self.tell(order_id)
        return len(ids)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep_once(self.sweep_s)
            except Exception:
                log.warning("inbound sweep failed", exc_info=True)

    async def __aenter__(self) -> Inbound:
        self._task = asyncio.create_task(self._sweep_loop(), name="orders-inbound-sweeper")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*self._pending, return_exceptions=True)
