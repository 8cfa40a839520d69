"""The warehouse's in-memory state: fulfillment centers, stock per node, orders, shipments, returns.

Pure and synchronous: the API, the simulation loop and the EDI mailbox call these methods on the
server's event loop, and each returns the events it caused (``order.shipped``...) for the caller
to deliver. All randomness comes from one generator seeded at reset, so a run is reproducible.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SKUS = [f"SKU-{n}" for n in range(1001, 1011)]
CENTERS = [(1, "EAST", "Edison, NJ"), (2, "WEST", "Ontario, CA")]

# Order statuses as ShipBob names them.
PROCESSING = "Processing"
EXCEPTION = "Exception"
PARTIALLY_FULFILLED = "PartiallyFulfilled"
FULFILLED = "Fulfilled"
CANCELLED = "Cancelled"
# Shipment progress, in order; "Completed" is ShipBob's shipped.
STAGES = ["Processing", "Picked", "Packed", "Completed", "Delivered"]


class Refused(Exception):
    """A request the warehouse refuses (answered 422 / 404 by the API)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Event:
    """Something a subscriber hears about: a webhook topic and its payload, plus EDI context."""

    topic: str
    payload: dict[str, Any]
    order: Order | None = None
    shipment: Shipment | None = None
    ret: Return | None = None


@dataclass
class Stock:
    """One SKU at one fulfillment center."""

    on_hand: int
    committed: int = 0
    damaged: int = 0

    @property
    def fulfillable(self) -> int:
        """On hand minus committed (ShipBob's definition), never negative."""
        return max(0, self.on_hand - self.committed)


@dataclass
class Line:
    """An order line: SKU and units."""

    sku: str
    quantity: int
    line_id: int = 0


@dataclass
class Shipment:
    """Units of an order leaving one fulfillment center in one parcel with one tracking number."""

    id: int
    order_id: int
    center_id: int
    lines: list[Line]
    stage: int = 0
    due_at: float = 0.0
    tracking_number: str = ""
    carrier: str = "UPS"
    shipped_at: str = ""
    delivered_at: str = ""
    cancelled: bool = False
    ship_sequence: int = 0
    #: The shipment's own address once changed by ``update_shipment_address``; else the order's.
    recipient: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """ShipBob's shipment status."""
        if self.cancelled:
            return "Cancelled"
        return "Completed" if self.stage >= 3 else "Processing"

    @property
    def shipped(self) -> bool:
        """True once the parcel left the building."""
        return self.stage >= 3 and not self.cancelled


@dataclass
class Order:
    """A fulfillment order placed by a channel (API) or by a 940 (EDI)."""

    id: int
    channel_id: int
    reference_id: str
    order_number: str
    lines: list[Line]
    recipient: dict[str, Any]
    shipping_method: str
    created_at: str
    source: str = "api"
    status: str = PROCESSING
    shipments: list[Shipment] = field(default_factory=list)
    edi_sender: str = ""


@dataclass
class ReturnItem:
    """One SKU of a return: expected, then received (some maybe damaged)."""

    sku: str
    quantity: int
    received: int = 0
    damaged: int = 0


@dataclass
class Return:
    """A return authorization, awaiting arrival until the warehouse receives it."""

    id: int
    channel_id: int
    reference_id: str
    center_id: int
    items: list[ReturnItem]
    original_shipment_id: int | None
    tracking_number: str
    created_at: str
    status: str = "AwaitingArrival"
    due_at: float = 0.0
    completed_at: str = ""


#: Why the warehouse adjusted its stock (``POST /_sandbox/inventory/adjust``): ``damaged`` moves
#: good units to damaged (a negative delta: repaired, back to good), ``lost`` takes units off hand,
#: ``found`` puts units back, ``count`` changes on hand either way (a recount).
ADJUSTMENT_REASONS = ("damaged", "lost", "found", "count")


@dataclass
class Adjustment:
    """A change of stock the warehouse made on its own: no receipt, no shipment."""

    id: int
    center_id: int
    sku: str
    reason: str
    delta: int
    adjusted_at: str


def now_iso() -> str:
    """The current time as ShipBob writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class TplState:
    """Everything the warehouse knows; rebuilt from the seed by :meth:`reset`."""

    def __init__(self, seed: int = 0, *, partial_rate: float = 0.0, damaged_rate: float = 0.0) -> None:
        self.partial_rate = partial_rate
        self.damaged_rate = damaged_rate
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Seeded demo data: two centers, ten SKUs with stock at each, no orders."""
        self.seed = seed
        self.random = random.Random(seed)
        self.centers = {cid: {"id": cid, "name": name, "address": where} for cid, name, where in CENTERS}
        self.inventory_ids = {sku: 5001 + n for n, sku in enumerate(SKUS)}
        self.stock: dict[tuple[str, int], Stock] = {}
        for sku in SKUS:
            for cid, _, _ in CENTERS:
                self.stock[(sku, cid)] = Stock(on_hand=self.random.randint(40, 120))
        self.orders: dict[int, Order] = {}
        self.by_reference: dict[tuple[int, str], int] = {}
        self.returns: dict[int, Return] = {}
        self.returns_by_reference: dict[tuple[int, str], int] = {}
        self._next = {
            "order": 100001,
            "shipment": 200001,
            "return": 300001,
            "adjustment": 500001,
            "line": 1,
            "shipped": 1,
        }

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    def center_id(self, name_or_id: str | int) -> int:
        """A center by id or name."""
        for cid, center in self.centers.items():
            if str(name_or_id) in (str(cid), center["name"]):
                return cid
        raise Refused(422, "UnknownFulfillmentCenter", f"Unknown fulfillment center {name_or_id!r}")

    # --- orders -------------------------------------------------------------------------------

    def create_order(
        self,
        *,
        channel_id: int,
        reference_id: str,
        lines: list[Line],
        recipient: dict[str, Any],
        shipping_method: str = "Standard",
        order_number: str = "",
        source: str = "api",
        due_at: float = 0.0,
        edi_sender: str = "",
        location_id: int | None = None,
    ) -> Order:
        """Accept an order and commit its stock at the first center that can ship it whole, or at
        ``location_id`` when the channel names the center (ShipBob's "desired fulfillment center";
        without the stock there, the order waits in Exception like one out of stock everywhere).

        Raises:
            Refused: 422 "Duplicate reference ID" when the channel already used ``reference_id``;
                422 for an unknown SKU or a non-positive quantity.
        """
        if (channel_id, reference_id) in self.by_reference:
            raise Refused(422, "DuplicateReferenceId", "Duplicate reference ID")
        if not lines:
            raise Refused(422, "ValidationError", "An order needs at least one product")
        for line in lines:
            if line.sku not in self.inventory_ids:
                raise Refused(422, "ValidationError", f"Unknown product reference {line.sku!r}")
            if line.quantity <= 0:
                raise Refused(422, "ValidationError", f"Quantity of {line.sku} must be positive")
            line.line_id = self._id("line")
        order = Order(
            id=self._id("order"),
            channel_id=channel_id,
            reference_id=reference_id,
            order_number=order_number or reference_id,
            lines=lines,
            recipient=recipient,
            shipping_method=shipping_method,
            created_at=now_iso(),
            source=source,
            edi_sender=edi_sender,
        )
        center = self._allocate(lines, location_id)
        shipment = Shipment(
            id=self._id("shipment"),
            order_id=order.id,
            center_id=center or location_id or 1,
            lines=list(lines),
            due_at=due_at,
        )
        order.shipments.append(shipment)
        if center is None:
            order.status = EXCEPTION  # out of stock everywhere: waits for stock (ShipBob's exception)
        self.orders[order.id] = order
        self.by_reference[(channel_id, reference_id)] = order.id
        return order

    def _allocate(self, lines: list[Line], only: int | None = None) -> int | None:
        for cid in self.centers if only is None else [only]:
            if all(self.stock[(line.sku, cid)].fulfillable >= line.quantity for line in lines):
                for line in lines:
                    self.stock[(line.sku, cid)].committed += line.quantity
                return cid
        return None

    def order(self, order_id: int) -> Order:
        """An order by id.

        Raises:
            Refused: 404 when there is none.
        """
        order = self.orders.get(order_id)
        if order is None:
            raise Refused(404, "NotFound", f"Order {order_id} not found")
        return order

    def order_by_reference(self, channel_id: int, reference_id: str) -> Order | None:
        """The channel's order with that reference id, if any."""
        order_id = self.by_reference.get((channel_id, reference_id))
        return self.orders.get(order_id) if order_id is not None else None

    def cancel_order(self, order_id: int) -> Order:
        """Cancel an order that has not shipped; its committed stock is released.

        Raises:
            Refused: 422 once any shipment of the order has shipped; 404 for an unknown order.
        """
        order = self.order(order_id)
        if order.status == CANCELLED:
            return order
        shipped = [s for s in order.shipments if s.shipped]
        if shipped:
            raise Refused(
                422,
                "OrderAlreadyShipped",
                f"Order {order.id} cannot be cancelled: shipment {shipped[0].id} has already shipped "
                f"(tracking {shipped[0].tracking_number})",
            )
        for shipment in order.shipments:
            if order.status != EXCEPTION:
                for line in shipment.lines:
                    self.stock[(line.sku, shipment.center_id)].committed -= line.quantity
            shipment.cancelled = True
        order.status = CANCELLED
        return order

    def shipment(self, shipment_id: int) -> tuple[Order, Shipment]:
        """A shipment by id, with its order.

        Raises:
            Refused: 404 when there is none.
        """
        for order in self.orders.values():
            for shipment in order.shipments:
                if shipment.id == shipment_id:
                    return order, shipment
        raise Refused(404, "NotFound", f"Shipment {shipment_id} not found")

    def update_shipment_address(self, shipment_id: int, address: dict[str, Any]) -> list[Event]:
        """Change where a shipment goes while nobody has picked it yet (ShipBob's updateAddress).

        ``address`` is the recipient as orders carry it (``name``, ``address{address1, ...}``...).
        The order's recipient follows when every shipment still to ship has the new address.

        Raises:
            Refused: 422 ``ShipmentCancelled``, ``ShipmentAlreadyShipped`` or
                ``ShipmentAlreadyPicked`` once the warehouse has started on it; 404 unknown.
        """
        order, shipment = self.shipment(shipment_id)
        if shipment.cancelled or order.status == CANCELLED:
            raise Refused(422, "ShipmentCancelled", f"Shipment {shipment.id} is cancelled")
        if shipment.shipped:
            raise Refused(
                422,
                "ShipmentAlreadyShipped",
                f"Shipment {shipment.id} has already shipped (tracking {shipment.tracking_number}); "
                "its address cannot change",
            )
        if shipment.stage > 0:
            raise Refused(
                422,
                "ShipmentAlreadyPicked",
                f"Shipment {shipment.id} is {STAGES[shipment.stage]}; the address can change only "
                "before it is picked",
            )
        shipment.recipient = address
        if all(s.recipient == address for s in order.shipments if not s.shipped and not s.cancelled):
            order.recipient = address
        return [Event("order.shipment.address.updated", {}, order=order, shipment=shipment)]

    # --- the warehouse at work -------------------------------------------------------------------

    def advance(self, now: float, settings_delays: list[float], *, force: bool = False) -> list[Event]:
        """Move every shipment whose time has come (or every one, ``force``) one stage on.

        ``settings_delays`` are the real-time delays after entering Processing, Picked, Packed and
        Completed (pick, pack, ship, deliver). Returns the events it caused.
        """
        events: list[Event] = []
        for order in list(self.orders.values()):
            if order.status == CANCELLED:
                continue
            if order.status == EXCEPTION:
                self._retry_allocation(order)
                continue
            for shipment in list(order.shipments):
                if shipment.cancelled or shipment.stage >= len(STAGES) - 1:
                    continue
                if not force and now < shipment.due_at:
                    continue
                events.extend(self.step(order, shipment, now, settings_delays))
        for ret in list(self.returns.values()):
            if ret.status == "AwaitingArrival" and (force or now >= ret.due_at):
                events.extend(self.receive_return(ret.id))
        return events

    def _retry_allocation(self, order: Order) -> None:
        center = self._allocate(order.lines)
        if center is not None:
            order.status = PROCESSING
            for shipment in order.shipments:
                shipment.center_id = center

    def step(self, order: Order, shipment: Shipment, now: float, delays: list[float]) -> list[Event]:
        """Move one shipment one stage on (shipping it when it leaves Packed)."""
        nxt = shipment.stage + 1
        if STAGES[nxt] == "Completed":
            return self._ship(order, shipment, now, delays)
        shipment.stage = nxt
        shipment.due_at = now + delays[min(nxt, len(delays) - 1)]
        if STAGES[nxt] == "Delivered":
            shipment.delivered_at = now_iso()
            return [Event("order.shipment.delivered", {}, order=order, shipment=shipment)]
        return []

    def _ship(self, order: Order, shipment: Shipment, now: float, delays: list[float]) -> list[Event]:
        rest = self._maybe_split(order, shipment)
        shipment.stage = STAGES.index("Completed")
        shipment.due_at = now + delays[3]
        shipment.shipped_at = now_iso()
        shipment.ship_sequence = self._id("shipped")
        shipment.tracking_number = self._tracking_number()
        for line in shipment.lines:
            stock = self.stock[(line.sku, shipment.center_id)]
            stock.on_hand -= line.quantity
            stock.committed -= line.quantity
        if rest is not None:
            rest.due_at = now + delays[2]  # the second parcel follows after another ship delay
            order.shipments.append(rest)
        pending = [s for s in order.shipments if not s.shipped and not s.cancelled]
        order.status = PARTIALLY_FULFILLED if pending else FULFILLED
        return [Event("order.shipped", {}, order=order, shipment=shipment)]

    def _maybe_split(self, order: Order, shipment: Shipment) -> Shipment | None:
        """With the partial-shipment rate, ship about half now and the rest in a second parcel."""
        if len(order.shipments) > 1 or sum(line.quantity for line in shipment.lines) < 2:
            return None
        if self.random.random() >= self.partial_rate:
            return None
        return self.split(order, shipment)

    def split(self, order: Order, shipment: Shipment) -> Shipment | None:
        """Split a shipment into two parcels: about half of the units now, the rest later."""
        first: list[Line] = []
        second: list[Line] = []
        if any(line.quantity >= 2 for line in shipment.lines):
            for line in shipment.lines:
                now_units = (line.quantity + 1) // 2
                first.append(Line(line.sku, now_units, line.line_id))
                if line.quantity - now_units:
                    second.append(Line(line.sku, line.quantity - now_units, line.line_id))
        else:
            half = (len(shipment.lines) + 1) // 2
            first, second = list(shipment.lines[:half]), list(shipment.lines[half:])
        if not second:
            return None
        shipment.lines = first
        return Shipment(
            id=self._id("shipment"),
            order_id=order.id,
            center_id=shipment.center_id,
            lines=second,
            stage=shipment.stage,
            recipient=shipment.recipient,
        )

    def _tracking_number(self) -> str:
        return "1Z" + "".join(self.random.choices(string.ascii_uppercase + string.digits, k=16))

    # --- returns ----------------------------------------------------------------------------------

    def create_return(
        self,
        *,
        channel_id: int,
        reference_id: str,
        center: str | int,
        items: list[ReturnItem],
        original_shipment_id: int | None,
        tracking_number: str,
        due_at: float,
    ) -> Return:
        """Authorize a return to one center.

        Raises:
            Refused: 422 for a duplicate reference id, an unknown SKU or center, no items.
        """
        if (channel_id, reference_id) in self.returns_by_reference:
            raise Refused(422, "DuplicateReferenceId", "Duplicate reference ID")
        if not items:
            raise Refused(422, "ValidationError", "A return needs at least one inventory item")
        for item in items:
            if item.sku not in self.inventory_ids or item.quantity <= 0:
                raise Refused(422, "ValidationError", f"Invalid return item {item.sku!r} x {item.quantity}")
        ret = Return(
            id=self._id("return"),
            channel_id=channel_id,
            reference_id=reference_id,
            center_id=self.center_id(center),
            items=items,
            original_shipment_id=original_shipment_id,
            tracking_number=tracking_number,
            created_at=now_iso(),
            due_at=due_at,
        )
        self.returns[ret.id] = ret
        self.returns_by_reference[(channel_id, reference_id)] = ret.id
        return ret

    def receive_return(self, return_id: int, damaged: dict[str, int] | None = None) -> list[Event]:
        """The parcel arrives: good units go back on hand, damaged ones to quarantine.

        ``damaged`` forces the damaged units per SKU; otherwise each unit is damaged with the
        configured rate.

        Raises:
            Refused: 404 unknown return; 422 when it was already received.
        """
        ret = self.returns.get(return_id)
        if ret is None:
            raise Refused(404, "NotFound", f"Return {return_id} not found")
        if ret.status != "AwaitingArrival":
            raise Refused(422, "ReturnAlreadyReceived", f"Return {return_id} was already received")
        for item in ret.items:
            if damaged is not None:
                bad = min(item.quantity, max(0, int(damaged.get(item.sku, 0))))
            else:
                bad = sum(1 for _ in range(item.quantity) if self.random.random() < self.damaged_rate)
            item.received, item.damaged = item.quantity, bad
            stock = self.stock[(item.sku, ret.center_id)]
            stock.on_hand += item.quantity - bad
            stock.damaged += bad
        ret.status = "Completed"
        ret.completed_at = now_iso()
        return [Event("return.completed", {}, ret=ret)]

    def set_stock(self, sku: str, center: str | int, on_hand: int) -> Stock:
        """Set a SKU's on-hand units at a center (a cycle count)."""
        if sku not in self.inventory_ids:
            raise Refused(422, "ValidationError", f"Unknown SKU {sku!r}")
        stock = self.stock[(sku, self.center_id(center))]
        stock.on_hand = max(0, on_hand)
        return stock

    def adjust_stock(self, sku: str, center: str | int, delta: int, reason: str) -> Adjustment:
        """Adjust a SKU's stock at a center by ``delta`` units for ``reason`` (ADJUSTMENT_REASONS).

        Raises:
            Refused: 422 for an unknown SKU, center or reason, a zero delta, a delta against its
                reason (lost must be negative, found positive), or more units than there are.
        """
        if sku not in self.inventory_ids:
            raise Refused(422, "ValidationError", f"Unknown SKU {sku!r}")
        center_id = self.center_id(center)
        if reason not in ADJUSTMENT_REASONS:
            raise Refused(422, "ValidationError", f"reason must be one of {', '.join(ADJUSTMENT_REASONS)}")
        if delta == 0 or (reason == "lost" and delta > 0) or (reason == "found" and delta < 0):
            raise Refused(422, "ValidationError", f"delta {delta} does not fit reason {reason!r}")
        stock = self.stock[(sku, center_id)]
        if reason == "damaged":
            if delta > stock.on_hand or -delta > stock.damaged:
                have = f"{sku} has {stock.on_hand} good, {stock.damaged} damaged"
                raise Refused(422, "InsufficientStock", have)
            stock.on_hand -= delta
            stock.damaged += delta
        else:
            if stock.on_hand + delta < 0:
                raise Refused(422, "InsufficientStock", f"{sku} has {stock.on_hand} on hand")
            stock.on_hand += delta
        return Adjustment(
            id=self._id("adjustment"),
            center_id=center_id,
            sku=sku,
            reason=reason,
            delta=delta,
            adjusted_at=now_iso(),
        )
