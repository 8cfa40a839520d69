"""OrderReleasedToWarehouse → Shopify's fulfillment orders moved to the location released to (I4).

Shopify assigns each checkout's lines to a location by its own routing and commits the stock
there; the mesh reserves and releases where its own routing says (decision 0011). Where the two
differ, Shopify shows one location too low (it committed units the mesh took elsewhere) and the
mesh's figure for it cannot be pushed without undoing sales in flight (decision 0025); under a
flash sale that held a location's figure below the mesh's for minutes. So when an order is
released to a location, its units that Shopify assigned elsewhere are moved there with
`fulfillmentOrderMove`, and Shopify's committed stock follows the mesh's reservation
(decision 0042).

- prepare (outside any transaction; one release at a time, after a burst's webhooks are
  answered, leaving half of the cost bucket to the other calls): read where Shopify assigned the
  order's lines, work out the moves (`translate.fulfillment.moves_to`)
  and send them. Safe to repeat: a redelivery reads again and finds the units where they were
  moved. A move Shopify refuses (the fulfillment order closed or started meanwhile, the item not
  stocked at the location) is skipped and logged: it changes nothing, and verification finds the
  difference as before.
- handler (the inbox transaction): records the units moved per SKU and location in
  `inventory_move`, which the inventory pusher applies before its next round: Shopify's figure at
  the destination fell by them for units the mesh had already counted there, so the next push
  may raise it back; at the origin it rose by as much.

Off by default (`MOVE_FULFILLMENT_ORDERS`): on the Standard plan the read per release and the
moves cost a flash sale more than they gave it (decision 0042 has the measurements).

A crash between a move and the commit loses only that record: the redelivery finds nothing to
move, and Shopify's figure at the destination stays that many units low until verification
repairs it (`INVENTORY_LOWER_GRACE_S`): selling less for a while, never more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import insert

from libs.bus import MessageContext, PrepareContext, Subscription
from libs.store import Compiled, after_commit
from libs.telemetry import record_outcome
from retail.common.v1 import common_pb2
from retail.orders.v1 import events_pb2 as order_events
from services.shopify_adapter.clients.admin import ShopifyAdmin, ShopifyError
from services.shopify_adapter.store import tables
from services.shopify_adapter.translate.fulfillment import Move, location_gids, moves_to

log = logging.getLogger(__name__)

DURABLE = "shopify-adapter-routing"
HANDLER = "shopify-adapter.routing"
#: A location not found in Shopify (a warehouse Shopify does not know) is looked for again after this.
LOCATIONS_MAX_AGE_S = 60.0
#: Share of Shopify's cost bucket the moves leave to the other calls: fulfillments (customer-facing)
#: and availability pushes both go first (M5).
KEEP_FREE = 0.5

_RECORD_MOVE = Compiled(insert(tables.InventoryMove.__table__))


def _released(event: order_events.OrderReleasedToWarehouse) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in event.lines:
        units[line.line_id] = units.get(line.line_id, 0) + line.quantity
    return units


class FulfillmentOrderRouter:
    """Moves Shopify's fulfillment orders to the locations the mesh releases orders to.

    Args:
        admin: the Admin API client.
        keep_free: share of the cost bucket left to the other calls.
        on_recorded: runs after moves were recorded (wakes the inventory pusher).
        ingress_quiet: waits until the webhook ingress receives no burst, at most the seconds given
            (`WebhookIngress.quiet`): the moves wait for a burst's acknowledgements (decision 0035).
        ingress_first_s: how long a release waits, at most, for a burst to be answered.
    """

    def __init__(
        self,
        admin: ShopifyAdmin,
        *,
        keep_free: float = KEEP_FREE,
        on_recorded: Callable[[], None] = lambda: None,
        ingress_quiet: Callable[[float], Awaitable[None]] | None = None,
        ingress_first_s: float = 0.5,
    ) -> None:
        self.admin = admin
        self.keep_free = keep_free
        self.on_recorded = on_recorded
        self.ingress_quiet = ingress_quiet
        self.ingress_first_s = ingress_first_s
        self._locations: dict[str, str] = {}
        self._locations_read_at = -LOCATIONS_MAX_AGE_S

    def subscription(self) -> Subscription:
        """The durable consumer of OrderReleasedToWarehouse (Shopify orders only)."""
        return Subscription(
            durable=DURABLE,
            filter_subjects=[order_events.OrderReleasedToWarehouse],
            handler=self.on_released,
            prepare=self.prepare,
            relevant=self.relevant,
            ack_wait=60.0,
            # One release at a time: the moves may follow a sale by a few seconds, and during one
            # they must not take the cores and the bucket from the order flow all at once.
            concurrency=1,
        )

    async def relevant(self, event: order_events.OrderReleasedToWarehouse) -> bool:
        """Only orders that came from Shopify have fulfillment orders there."""
        ref = event.channel_order
        return ref.system == common_pb2.SOURCE_SYSTEM_SHOPIFY and bool(ref.id)

    async def prepare(self, event: order_events.OrderReleasedToWarehouse, pctx: PrepareContext) -> list[Move]:
        """Move the release's units that Shopify assigned elsewhere (module docstring); returns the
        moves Shopify accepted."""
        location = event.location_id.upper()
        if self.ingress_quiet is not None:
            await self.ingress_quiet(self.ingress_first_s)
        location_gid = await self._location_gid(location)
        if location_gid is None:
            log.warning(
                "no Shopify location for release", extra={"location": location, "order": event.order_id}
            )
            return []
        order = await self.admin.assignments(event.channel_order.id, keep_free=self.keep_free)
        if order is None:
            log.warning("Shopify order not found", extra={"order": event.order_id})
            return []
        nodes = (order.get("fulfillmentOrders") or {}).get("nodes") or []
        done: list[Move] = []
        for move in moves_to(location, _released(event), nodes):
            try:
                await self.admin.move_fulfillment_order(
                    move.fulfillment_order_id, location_gid, move.items, keep_free=self.keep_free
                )
            except ShopifyError as refused:
                record_outcome(HANDLER, "business_error")
                log.warning(
                    "Shopify refused a fulfillment-order move",
                    extra={"order": event.order_id, "location": location, "reason": str(refused)[:300]},
                )
                continue
            record_outcome(HANDLER, "ok")
            done.append(move)
        return done

    async def on_released(self, event: order_events.OrderReleasedToWarehouse, ctx: MessageContext) -> None:
        """Record the units moved, for the inventory pusher (in the inbox transaction)."""
        moves: list[Move] = ctx.prepared
        now = datetime.now(UTC)
        destination = event.location_id.upper()
        rows = [
            {"sku": sku, "location_id": location, "quantity": quantity, "created_at": now}
            for move in moves
            for sku, units in move.units.items()
            for location, quantity in ((destination, units), (move.from_location, -units))
        ]
        if rows:
            await ctx.session.execute(_RECORD_MOVE, rows)
            after_commit(ctx.session, self.on_recorded)

    async def _location_gid(self, location: str) -> str | None:
        if (
            location not in self._locations
            and time.monotonic() - self._locations_read_at >= LOCATIONS_MAX_AGE_S
        ):
            self._locations = location_gids(await self.admin.locations(keep_free=self.keep_free))
            self._locations_read_at = time.monotonic()
        return self._locations.get(location)
