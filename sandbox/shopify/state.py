"""The Shopify stand-in's in-memory store: seeded demo data and every state change Shopify makes.

The store knows nothing of HTTP or GraphQL. Each operation validates first, then applies, then
announces what happened through ``emit(topic, payload)`` (the webhook dispatcher in the app, a list
in unit tests). Refusals raise :class:`Rejected` carrying Shopify-shaped user errors.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sandbox.shopify import payloads
from sandbox.shopify.model import (
    QUANTITY_NAMES,
    UNAVAILABLE_NAMES,
    AdjustmentChange,
    AdjustmentGroup,
    Customer,
    Disposition,
    Fulfillment,
    FulfillmentHold,
    FulfillmentLineItem,
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    FulfillmentOrderMove,
    InventoryItem,
    InventoryLevel,
    Job,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    RefundLineItem,
    Return,
    ReturnLineItem,
    ReverseFulfillmentOrder,
    ReverseFulfillmentOrderLineItem,
    Shop,
    Tracking,
    Transaction,
    Variant,
    WebhookSubscription,
)

TOPICS = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_EDITED": "orders/edited",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENT_ORDERS_PLACED_ON_HOLD": "fulfillment_orders/placed_on_hold",
    "FULFILLMENT_ORDERS_HOLD_RELEASED": "fulfillment_orders/hold_released",
    "REFUNDS_CREATE": "refunds/create",
    "RETURNS_REQUEST": "returns/request",
    "RETURNS_APPROVE": "returns/approve",
    "RETURNS_PROCESS": "returns/process",
    "RETURNS_CLOSE": "returns/close",
    "REVERSE_FULFILLMENT_ORDERS_DISPOSE": "reverse_fulfillment_orders/dispose",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "PRODUCTS_CREATE": "products/create",
    "PRODUCTS_UPDATE": "products/update",
}
"""GraphQL ``WebhookSubscriptionTopic`` value -> the topic as sent in ``X-Shopify-Topic``."""

SET_REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
ADJUSTABLE_NAMES = frozenset(
    {"available", "on_hand", "incoming", "reserved", "damaged", "safety_stock", "quality_control"}
)
MAX_QUANTITY = 1_000_000_000
SHOP_TZ = timezone(timedelta(hours=-5))
"""The demo shop's UTC offset, used in webhook bodies (GraphQL answers in UTC, as Shopify does)."""

_GID = re.compile(r"^gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>\d+)(?:\?.*)?$")

_PRODUCTS = [
    ("Trail Runner Shoe", "Footwear", "49.99", 820),
    ("Merino Crew Sock", "Apparel", "14.50", 90),
    ("Packable Rain Shell", "Apparel", "119.00", 410),
    ("Insulated Bottle 750ml", "Gear", "29.95", 380),
    ("Daypack 22L", "Gear", "89.00", 900),
    ("Headlamp 400lm", "Gear", "39.99", 110),
    ("Trekking Pole Pair", "Gear", "74.00", 520),
    ("Fleece Beanie", "Apparel", "19.99", 80),
    ("Camp Mug Enamel", "Gear", "12.00", 240),
    ("First Aid Kit Mini", "Gear", "24.50", 300),
]
_CUSTOMERS = [
    ("Ada", "Lovelace", "ada@example.com", "12 Analytical Way", "Boston", "Massachusetts", "MA", "02108"),
    ("Grace", "Hopper", "grace@example.com", "9 Cobol Court", "Arlington", "Virginia", "VA", "22201"),
    ("Alan", "Turing", "alan@example.com", "1 Enigma Lane", "Austin", "Texas", "TX", "73301"),
    ("Katherine", "Johnson", "katherine@example.com", "3 Orbit Road", "Hampton", "Virginia", "VA", "23669"),
    ("Linus", "Pauling", "linus@example.com", "88 Helix Street", "Portland", "Oregon", "OR", "97201"),
]


@dataclass
class UserError:
    """One Shopify user error: ``{field, message, code}``."""

    message: str
    field: list[str] | None = None
    code: str | None = None


class Rejected(Exception):
    """An operation refused, with the user errors Shopify would return."""

    def __init__(self, *errors: UserError) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


def reject(message: str, field: list[str] | None = None, code: str | None = None) -> Rejected:
    """Build a :class:`Rejected` with a single user error."""
    return Rejected(UserError(message, field, code))


def parse_gid(value: str | int, kind: str | None = None) -> int | None:
    """The numeric id in ``gid://shopify/<Kind>/<id>`` (or a bare number); ``None`` if it isn't one."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    match = _GID.match(value)
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    return int(match["id"])


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Every record of the demo shop and the operations that change them.

    Args:
        seed: seed of the demo data and of generated ids and tokens.
        shop_domain: the shop's ``myshopify.com`` domain.
        emit: called with ``(topic, payload)`` after each change Shopify would announce by webhook.
        clock: current time (aware, UTC); injectable for tests.
    """

    def __init__(
        self,
        seed: int = 0,
        shop_domain: str = "retail-mesh-demo.myshopify.com",
        emit: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.shop_domain = shop_domain
        self._emit_to = emit
        self._clock = clock
        self.reset(seed)

    # ----- construction ---------------------------------------------------------------------

    def reset(self, seed: int) -> None:
        """Forget everything and seed the demo shop again."""
        self.seed = seed
        self._rng = random.Random(seed)
        self._used_ids: set[int] = set()
        self._last_now = datetime(2000, 1, 1, tzinfo=UTC)
        self.shop = Shop(
            self._new_id(),
            name="Retail Mesh Demo",
            myshopify_domain=self.shop_domain,
            email="owner@retail-mesh-demo.example",
        )
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.inventory_items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple[int, int], InventoryLevel] = {}
        self.customers: dict[int, Customer] = {}
        self.orders: dict[int, Order] = {}
        self.line_owner: dict[int, int] = {}
        self.fulfillment_orders: dict[int, FulfillmentOrder] = {}
        self.fulfillment_order_moves: list[FulfillmentOrderMove] = []
        self.fulfillments: dict[int, Fulfillment] = {}
        self.refunds: dict[int, Refund] = {}
        self.returns: dict[int, Return] = {}
        self.reverse_fulfillment_orders: dict[int, ReverseFulfillmentOrder] = {}
        self.adjustment_groups: dict[int, AdjustmentGroup] = {}
        self.jobs: dict[int, Job] = {}
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, Any]] = {}
        self._next_order_number = 1001
        self._seed_demo_data()

    def _new_id(self) -> int:
        # 60..63-bit ids: all above 2**53, like Shopify's, so lossy JSON parsing shows up in tests.
        while True:
            ident = self._rng.randrange(2**60, 2**63 - 1)
            if ident not in self._used_ids:
                self._used_ids.add(ident)
                return ident

    def _token(self, length: int, alphabet: str = string.hexdigits[:16]) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def now(self) -> datetime:
        """The current time, strictly after the previous call (so ``updated_at`` orders changes)."""
        now = self._clock()
        if now <= self._last_now:
            now = self._last_now + timedelta(microseconds=1)
        self._last_now = now
        return now

    def _seed_demo_data(self) -> None:
        seeded_at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
        for code, name, city, province, zip_code in (
            ("EAST", "East Warehouse", "Newark", "NJ", "07102"),
            ("WEST", "West Warehouse", "Reno", "NV", "89501"),
        ):
            loc = Location(
                self._new_id(),
                code=code,
                name=name,
                address={
                    "address1": "1 Dock Street",
                    "city": city,
                    "province_code": province,
                    "zip": zip_code,
                    "country_code": "US",
                },
            )
            self.locations[loc.id] = loc
        for index, (title, product_type, price, grams) in enumerate(_PRODUCTS):
            sku = f"SKU-{1001 + index}"
            product = Product(
                self._new_id(),
                title=title,
                handle=re.sub(r"[^a-z0-9]+", "-", title.lower()),
                vendor="Retail Mesh Outfitters",
                product_type=product_type,
                created_at=seeded_at,
                updated_at=seeded_at,
            )
            self.products[product.id] = product
            self._add_variant(product, sku=sku, price=Decimal(price), grams=grams, at=seeded_at, stock=True)
        for first, last, email, street, city, province, code, zip_code in _CUSTOMERS:
            customer = Customer(
                self._new_id(),
                first_name=first,
                last_name=last,
                email=email,
                phone=None,
                address_id=self._new_id(),
                created_at=seeded_at,
                updated_at=seeded_at,
                address={
                    "first_name": first,
                    "last_name": last,
                    "company": None,
                    "address1": street,
                    "address2": None,
                    "city": city,
                    "province": province,
                    "province_code": code,
                    "country": "United States",
                    "country_code": "US",
                    "zip": zip_code,
                    "phone": None,
                },
            )
            self.customers[customer.id] = customer
        # A few orders from before the stand-in started, for reconciliation by updated_at.
        skus = sorted(v.sku for v in self.variants.values())
        customers = list(self.customers.values())
        emit, self._emit_to = self._emit_to, None
        clock, self._clock = self._clock, lambda: seeded_at
        try:
            for n in range(3):
                self._last_now = seeded_at + timedelta(hours=n)
                lines = [(self._rng.choice(skus), self._rng.randint(1, 3)) for _ in range(2)]
                self.checkout(lines, customer_email=customers[n].email)
        finally:
            self._emit_to, self._clock = emit, clock
            self._last_now = seeded_at + timedelta(days=1)

    def _add_variant(
        self, product: Product, *, sku: str, price: Decimal, grams: int, at: datetime, stock: bool
    ) -> Variant:
        variant = Variant(
            self._new_id(),
            product_id=product.id,
            sku=sku,
            price=price,
            grams=grams,
            created_at=at,
            updated_at=at,
        )
        item = InventoryItem(self._new_id(), sku=sku, variant_id=variant.id, created_at=at, updated_at=at)
        variant.inventory_item_id = item.id
        self.variants[variant.id] = variant
        self.inventory_items[item.id] = item
        product.variant_ids.append(variant.id)
        for loc in self.locations.values():
            level = InventoryLevel(item.id, loc.id, created_at=at, updated_at=at)
            if stock:
                level.damaged = self._rng.randint(0, 3)
                level.safety_stock = self._rng.randint(0, 5)
                level.quality_control = self._rng.randint(0, 2)
                level.on_hand = (
                    self._rng.randint(40, 160) + level.damaged + level.safety_stock + level.quality_control
                )
                level.incoming = self._rng.choice((0, 0, 24, 48))
            self.levels[(item.id, loc.id)] = level
        return variant

    # ----- lookups ---------------------------------------------------------------------------

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Announce a change (a webhook topic and its body)."""
        if self._emit_to is not None:
            self._emit_to(topic, payload)

    def to_shop_time(self, at: datetime | None) -> str | None:
        """A time as webhook bodies write it: ISO 8601 in the shop's zone, whole seconds."""
        if at is None:
            return None
        return at.astimezone(SHOP_TZ).isoformat(timespec="seconds")

    def variant_by_sku(self, sku: str) -> Variant | None:
        """The variant with this SKU."""
        return next((v for v in self.variants.values() if v.sku == sku), None)

    def location_by_code(self, code: str) -> Location | None:
        """A location by its code (``EAST``, ``WEST``)."""
        return next((loc for loc in self.locations.values() if loc.code == code), None)

    def customer_by_email(self, email: str) -> Customer | None:
        """A customer by email."""
        return next((c for c in self.customers.values() if c.email == email), None)

    def line_item(self, order: Order, line_item_id: int) -> LineItem | None:
        """A line of an order."""
        return next((li for li in order.line_items if li.id == line_item_id), None)

    def find_fulfillment_order_line(
        self, line_id: int
    ) -> tuple[FulfillmentOrder, FulfillmentOrderLineItem] | None:
        """A fulfillment-order line and its fulfillment order."""
        for fo in self.fulfillment_orders.values():
            for line in fo.line_items:
                if line.id == line_id:
                    return fo, line
        return None

    def find_fulfillment_line(self, line_id: int) -> tuple[Fulfillment, FulfillmentLineItem] | None:
        """A fulfillment line and its fulfillment."""
        for ful in self.fulfillments.values():
            for line in ful.line_items:
                if line.id == line_id:
                    return ful, line
        return None

    def find_return_line(self, line_id: int) -> tuple[Return, ReturnLineItem] | None:
        """A return line and its return."""
        for ret in self.returns.values():
            for line in ret.line_items:
                if line.id == line_id:
                    return ret, line
        return None

    def find_reverse_line(
        self, line_id: int
    ) -> tuple[ReverseFulfillmentOrder, ReverseFulfillmentOrderLineItem] | None:
        """A reverse-fulfillment-order line and its reverse fulfillment order."""
        for rfo in self.reverse_fulfillment_orders.values():
            for line in rfo.line_items:
                if line.id == line_id:
                    return rfo, line
        return None

    def level_for_sku(self, sku: str, location_id: int) -> InventoryLevel | None:
        """The inventory level of a SKU at a location."""
        variant = self.variant_by_sku(sku)
        return None if variant is None else self.levels.get((variant.inventory_item_id, location_id))

    def _touch_order(self, order: Order) -> None:
        order.updated_at = self.now()

    def _touch_level(self, level: InventoryLevel) -> None:
        level.updated_at = self.now()
        self.emit("inventory_levels/update", payloads.inventory_level(self, level))

    # ----- checkout and order changes --------------------------------------------------------

    def _pick_locations(self, wanted: list[tuple[Variant, int]]) -> list[int]:
        """One location per line (order edits): the whole line where it fits, else the first location."""
        return [allocation[0][0] for allocation in self._allocate(wanted, split=False)]

    def _allocate(
        self, wanted: list[tuple[Variant, int]], *, split: bool = True
    ) -> list[list[tuple[int, int]]]:
        """Shopify's default routing, simplified: per line, the (location, quantity) it is taken from.

        One location for everything if one can; else each line at the first location that has all
        of it; else (``split``) the line's quantity spread over the locations in order, as Shopify
        has done since 2025-04 rather than oversell one location. A line no location set can fill
        is refused for a ``DENY`` variant; a ``CONTINUE`` variant takes it all at the first location.
        """
        locations = sorted(self.locations.values(), key=lambda loc: loc.code)

        def available(variant: Variant, loc: Location) -> int:
            return self.levels[(variant.inventory_item_id, loc.id)].available

        for loc in locations:
            if all(available(v, loc) >= qty for v, qty in wanted):
                return [[(loc.id, qty)] for _, qty in wanted]
        chosen: list[list[tuple[int, int]]] = []
        for index, (variant, qty) in enumerate(wanted):
            whole = next((loc for loc in locations if available(variant, loc) >= qty), None)
            if whole is not None:
                chosen.append([(whole.id, qty)])
                continue
            if split and sum(max(0, available(variant, loc)) for loc in locations) >= qty:
                parts, left = [], qty
                for loc in locations:
                    take = min(left, max(0, available(variant, loc)))
                    if take:
                        parts.append((loc.id, take))
                        left -= take
                chosen.append(parts)
                continue
            if variant.inventory_policy != "CONTINUE":
                raise reject(
                    f"Not enough stock for {variant.sku}: {qty} wanted.",
                    ["lines", str(index), "quantity"],
                    "NOT_ENOUGH_IN_STOCK",
                )
            chosen.append([(locations[0].id, qty)])
        return chosen

    def checkout(
        self,
        lines: Iterable[tuple[str, int]],
        *,
        customer_email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        shipping_address: dict | None = None,
        note: str | None = None,
        tags: Iterable[str] = (),
        test: bool = True,
    ) -> Order:
        """Place an order as a customer's checkout does.

        Commits stock (available down, committed up) at the routed locations, opens one
        fulfillment order per location (a line split over locations has a line in each), records
        the captured payment, and announces ``orders/create`` and ``orders/paid``.

        Raises:
            Rejected: unknown SKU, bad quantity, or not enough stock where the variant denies overselling.
        """
        wanted: list[tuple[Variant, int]] = []
        for index, (sku, qty) in enumerate(lines):
            variant = self.variant_by_sku(sku)
            if variant is None:
                raise reject(f"Unknown SKU {sku}.", ["lines", str(index), "sku"], "NOT_FOUND")
            if qty < 1:
                raise reject("Quantity must be at least 1.", ["lines", str(index), "quantity"], "INVALID")
            wanted.append((variant, qty))
        if not wanted:
            raise reject("An order needs at least one line.", ["lines"], "BLANK")
        routed = self._allocate(wanted)

        customer = self._customer_for(customer_email, first_name, last_name, shipping_address)
        at = self.now()
        address = dict(shipping_address or customer.address)
        address.setdefault("name", f"{address.get('first_name', '')} {address.get('last_name', '')}".strip())
        order = Order(
            self._new_id(),
            number=self._next_order_number,
            token=self._token(32),
            confirmation_number=self._token(9, string.ascii_uppercase + string.digits),
            email=customer.email,
            customer_id=customer.id,
            shipping_address=address,
            billing_address=dict(address),
            shipping_line_id=self._new_id(),
            shipping_price=Decimal("10.00"),
            note=note,
            tags=sorted(set(tags)),
            test=test,
            created_at=at,
            updated_at=at,
        )
        self._next_order_number += 1
        by_location: dict[int, list[tuple[LineItem, int]]] = {}
        for (variant, qty), parts in zip(wanted, routed, strict=True):
            product = self.products[variant.product_id]
            line = LineItem(
                self._new_id(),
                variant_id=variant.id,
                product_id=product.id,
                sku=variant.sku,
                title=product.title,
                variant_title=None,
                vendor=product.vendor,
                price=variant.price,
                grams=variant.grams,
                quantity=qty,
                current_quantity=qty,
            )
            order.line_items.append(line)
            self.line_owner[line.id] = order.id
            for loc_id, part in parts:
                by_location.setdefault(loc_id, []).append((line, part))
                level = self.levels[(variant.inventory_item_id, loc_id)]
                level.committed += part
                level.updated_at = at
        for loc_id, loc_lines in by_location.items():
            self._open_fulfillment_order(order, loc_id, loc_lines, at)
        order.transactions.append(
            Transaction(
                self._new_id(), order_id=order.id, kind="SALE", amount=order.total, test=test, created_at=at
            )
        )
        self.orders[order.id] = order
        self.emit("orders/create", payloads.order(self, order))
        self.emit("orders/paid", payloads.order(self, order))
        for (variant, _), parts in zip(wanted, routed, strict=True):
            for loc_id, _ in parts:
                self.emit(
                    "inventory_levels/update",
                    payloads.inventory_level(self, self.levels[(variant.inventory_item_id, loc_id)]),
                )
        return order

    def _customer_for(
        self, email: str | None, first: str | None, last: str | None, address: dict | None
    ) -> Customer:
        if email is None:
            customers = sorted(self.customers.values(), key=lambda c: c.email)
            return customers[self._rng.randrange(len(customers))]
        found = self.customer_by_email(email)
        if found is not None:
            return found
        at = self.now()
        first = first or email.split("@")[0].title()
        last = last or "Customer"
        customer = Customer(
            self._new_id(),
            first_name=first,
            last_name=last,
            email=email,
            address_id=self._new_id(),
            created_at=at,
            updated_at=at,
            address=dict(
                address
                or {
                    "first_name": first,
                    "last_name": last,
                    "company": None,
                    "address1": "1 Main Street",
                    "address2": None,
                    "city": "Springfield",
                    "province": "Illinois",
                    "province_code": "IL",
                    "country": "United States",
                    "country_code": "US",
                    "zip": "62701",
                    "phone": None,
                }
            ),
        )
        self.customers[customer.id] = customer
        return customer

    def _open_fulfillment_order(
        self, order: Order, loc_id: int, lines: list[tuple[LineItem, int]], at: datetime
    ) -> FulfillmentOrder:
        fo = FulfillmentOrder(
            self._new_id(), order_id=order.id, location_id=loc_id, created_at=at, updated_at=at
        )
        for li, quantity in lines:
            variant = self.variants.get(li.variant_id) if li.variant_id else None
            fo.line_items.append(
                FulfillmentOrderLineItem(
                    self._new_id(),
                    line_item_id=li.id,
                    inventory_item_id=variant.inventory_item_id if variant else None,
                    total_quantity=quantity,
                    remaining_quantity=quantity,
                )
            )
        self.fulfillment_orders[fo.id] = fo
        order.fulfillment_order_ids.append(fo.id)
        return fo

    def get_order(self, order_id: int) -> Order:
        """An order, or a ``Rejected`` naming it."""
        order = self.orders.get(order_id)
        if order is None:
            raise reject("Order does not exist", ["id"], "NOT_FOUND")
        return order

    def update_order(
        self,
        order_id: int,
        *,
        note: str | None = None,
        tags: Iterable[str] | None = None,
        email: str | None = None,
        shipping_address: dict | None = None,
    ) -> Order:
        """Change an order's note, tags, email or shipping address, as ``orderUpdate`` does
        (announces ``orders/updated``). Address fields not given keep their values."""
        order = self.get_order(order_id)
        if shipping_address is not None:
            if order.cancelled_at is not None:
                raise reject("A cancelled order's address cannot change.", ["shippingAddress"], "INVALID")
            address = {**order.shipping_address, **shipping_address}
            if "name" not in shipping_address and (
                "first_name" in shipping_address or "last_name" in shipping_address
            ):
                address["name"] = (
                    f"{address.get('first_name') or ''} {address.get('last_name') or ''}".strip()
                )
            order.shipping_address = address
        if note is not None:
            order.note = note
        if tags is not None:
            order.tags = sorted(set(tags))
        if email is not None:
            order.email = email
        self._touch_order(order)
        self.emit("orders/updated", payloads.order(self, order))
        return order

    def edit_order(
        self, order_id: int, *, add: Iterable[tuple[str, int]] = (), remove: Iterable[tuple[int, int]] = ()
    ) -> Order:
        """Add SKUs to, or take unfulfilled units off, an order (``orders/edited``, ``orders/updated``)."""
        order = self.get_order(order_id)
        if order.cancelled_at is not None:
            raise reject("A cancelled order cannot be edited.", ["id"], "INVALID")
        add, remove = list(add), list(remove)
        for index, (line_id, delta) in enumerate(remove):
            line = self.line_item(order, line_id)
            if line is None:
                raise reject("Line item does not exist.", ["remove", str(index), "line_item_id"], "NOT_FOUND")
            if delta < 1 or delta > line.unfulfilled_quantity:
                raise reject(
                    "Only unfulfilled units can be removed.", ["remove", str(index), "quantity"], "INVALID"
                )
        wanted = []
        for index, (sku, qty) in enumerate(add):
            variant = self.variant_by_sku(sku)
            if variant is None:
                raise reject(f"Unknown SKU {sku}.", ["add", str(index), "sku"], "NOT_FOUND")
            if qty < 1:
                raise reject("Quantity must be at least 1.", ["add", str(index), "quantity"], "INVALID")
            wanted.append((variant, qty))
        routed = self._pick_locations(wanted) if wanted else []
        at = self.now()
        edit = {"id": self._new_id(), "created_at": at, "additions": [], "removals": []}
        for line_id, delta in remove:
            line = self.line_item(order, line_id)
            assert line is not None
            self._release_unfulfilled(order, line, delta, restock=True)
            edit["removals"].append({"id": line.id, "delta": delta})
        for (variant, qty), loc_id in zip(wanted, routed, strict=True):
            product = self.products[variant.product_id]
            line = LineItem(
                self._new_id(),
                variant_id=variant.id,
                product_id=product.id,
                sku=variant.sku,
                title=product.title,
                vendor=product.vendor,
                price=variant.price,
                grams=variant.grams,
                quantity=qty,
                current_quantity=qty,
            )
            order.line_items.append(line)
            self.line_owner[line.id] = order.id
            level = self.levels[(variant.inventory_item_id, loc_id)]
            level.committed += qty
            level.updated_at = at
            open_fo = next(
                (
                    self.fulfillment_orders[f]
                    for f in order.fulfillment_order_ids
                    if self.fulfillment_orders[f].location_id == loc_id
                    and self.fulfillment_orders[f].status in ("OPEN", "IN_PROGRESS", "ON_HOLD")
                ),
                None,
            )
            if open_fo is None:
                self._open_fulfillment_order(order, loc_id, [(line, qty)], at)
            else:
                open_fo.line_items.append(
                    FulfillmentOrderLineItem(
                        self._new_id(),
                        line_item_id=line.id,
                        inventory_item_id=variant.inventory_item_id,
                        total_quantity=qty,
                        remaining_quantity=qty,
                    )
                )
                open_fo.updated_at = at
            edit["additions"].append({"id": line.id, "delta": qty})
        order.updated_at = at
        self.emit("orders/edited", payloads.order_edit(self, order, edit))
        self.emit("orders/updated", payloads.order(self, order))
        return order

    def _release_unfulfilled(self, order: Order, line: LineItem, qty: int, *, restock: bool) -> None:
        """Take ``qty`` unfulfilled units off a line: off its fulfillment orders and out of committed."""
        line.current_quantity -= qty
        left = qty
        for fo_id in order.fulfillment_order_ids:
            fo = self.fulfillment_orders[fo_id]
            for fol in fo.line_items:
                if fol.line_item_id != line.id or left == 0:
                    continue
                take = min(left, fol.remaining_quantity)
                fol.remaining_quantity -= take
                fol.total_quantity -= take
                left -= take
                if fol.inventory_item_id is not None and take:
                    level = self.levels[(fol.inventory_item_id, fo.location_id)]
                    level.committed -= take
                    if not restock:
                        level.on_hand -= take
                    level.updated_at = self.now()
            if fo.status in ("OPEN", "IN_PROGRESS", "ON_HOLD") and all(
                fol.remaining_quantity == 0 for fol in fo.line_items
            ):
                fo.status = "CLOSED" if any(fol.total_quantity for fol in fo.line_items) else "CANCELLED"
                fo.updated_at = self.now()

    def cancel_order(
        self, order_id: int, *, reason: str, restock: bool, staff_note: str | None = None
    ) -> Job:
        """Cancel an order (Shopify's ``orderCancel``): release stock, close work, refund the payment.

        Announces ``orders/cancelled``, ``orders/updated`` and ``refunds/create``.
        """
        order = self.get_order(order_id)
        if order.cancelled_at is not None:
            raise reject("Order has already been cancelled.", ["orderId"], "INVALID")
        if any(li.fulfilled_quantity for li in order.line_items):
            raise reject(
                "Cannot cancel an order with fulfilled items; refund and return them instead.",
                ["orderId"],
                "INVALID",
            )
        at = self.now()
        refund = Refund(
            self._new_id(),
            order_id=order.id,
            note=staff_note,
            created_at=at,
            shipping_amount=order.shipping_price,
        )
        for line in order.line_items:
            qty = line.current_quantity
            if qty:
                self._release_unfulfilled(order, line, qty, restock=restock)
                line.current_quantity = 0
                refund.line_items.append(
                    RefundLineItem(
                        self._new_id(),
                        line_item_id=line.id,
                        quantity=qty,
                        restock_type="CANCEL" if restock else "NO_RESTOCK",
                        subtotal=line.price * qty,
                    )
                )
                line.refunded_quantity += qty
        for fo_id in order.fulfillment_order_ids:
            fo = self.fulfillment_orders[fo_id]
            if fo.status not in ("CLOSED",):
                fo.status = "CLOSED"
                fo.holds.clear()
                fo.updated_at = at
        amount = sum((li.subtotal for li in refund.line_items), Decimal("0.00")) + refund.shipping_amount
        refund.transactions.append(self._refund_transaction(order, amount, at))
        self.refunds[refund.id] = refund
        order.refund_ids.append(refund.id)
        order.cancelled_at = at
        order.closed_at = at
        order.cancel_reason = reason
        order.financial_status = "REFUNDED"
        order.updated_at = at
        job = Job(self._new_id(), done=False)
        self.jobs[job.id] = job
        self.emit("orders/cancelled", payloads.order(self, order))
        self.emit("orders/updated", payloads.order(self, order))
        self.emit("refunds/create", payloads.refund(self, refund))
        return job

    def _refund_transaction(self, order: Order, amount: Decimal, at: datetime) -> Transaction:
        sale = next((t for t in order.transactions if t.kind == "SALE"), None)
        tx = Transaction(
            self._new_id(),
            order_id=order.id,
            kind="REFUND",
            amount=amount,
            parent_id=sale.id if sale else None,
            test=order.test,
            created_at=at,
        )
        order.transactions.append(tx)
        return tx

    # ----- fulfillment ------------------------------------------------------------------------

    def fulfill(
        self,
        requests: list[tuple[int, list[tuple[int, int]] | None]],
        tracking: list[Tracking],
        notify_customer: bool = False,
    ) -> Fulfillment:
        """Ship lines of fulfillment orders (``fulfillmentCreate``).

        Args:
            requests: ``(fulfillment_order_id, [(fulfillment_order_line_id, quantity)] or None for all)``.
            tracking: tracking numbers, companies and URLs.
            notify_customer: accepted for shape; the stand-in sends no email.

        Raises:
            Rejected: unknown fulfillment order, one on hold or closed, orders or locations mixed, or
            a quantity above what remains.
        """
        if not requests:
            raise reject("Line items by fulfillment order can't be blank.", ["fulfillment"], "BLANK")
        plan: list[tuple[FulfillmentOrder, FulfillmentOrderLineItem, int]] = []
        order_ids, location_ids = set(), set()
        for index, (fo_id, lines) in enumerate(requests):
            fo = self.fulfillment_orders.get(fo_id)
            if fo is None:
                raise reject("Fulfillment order does not exist.", ["fulfillment"])
            if fo.status == "ON_HOLD":
                raise reject(
                    "Fulfillment order is on hold and cannot be fulfilled.",
                    ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"],
                )
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                raise reject(
                    f"Fulfillment order is {fo.status.lower()} and cannot be fulfilled.",
                    ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"],
                )
            order_ids.add(fo.order_id)
            location_ids.add(fo.location_id)
            if lines is None:
                plan.extend(
                    (fo, fol, fol.remaining_quantity) for fol in fo.line_items if fol.remaining_quantity
                )
                continue
            for line_index, (line_id, qty) in enumerate(lines):
                fol = next((x for x in fo.line_items if x.id == line_id), None)
                where = [
                    "fulfillment",
                    "lineItemsByFulfillmentOrder",
                    str(index),
                    "fulfillmentOrderLineItems",
                    str(line_index),
                ]
                if fol is None:
                    raise reject("Fulfillment order line item does not exist.", [*where, "id"])
                if qty < 1 or qty > fol.remaining_quantity:
                    raise reject(
                        f"Invalid fulfillment order line item quantity requested: {qty} "
                        f"(remaining {fol.remaining_quantity}).",
                        [*where, "quantity"],
                    )
                plan.append((fo, fol, qty))
        if len(order_ids) > 1 or len(location_ids) > 1:
            raise reject(
                "All fulfillment orders in a fulfillment must belong to the same order and location.",
                ["fulfillment"],
            )
        if not plan:
            raise reject("Nothing left to fulfill.", ["fulfillment"])
        order = self.orders[order_ids.pop()]
        at = self.now()
        ful = Fulfillment(
            self._new_id(),
            order_id=order.id,
            location_id=location_ids.pop(),
            name=f"{order.name}.{len(order.fulfillment_ids) + 1}",
            tracking=list(tracking),
            created_at=at,
            updated_at=at,
        )
        for fo, fol, qty in plan:
            fol.remaining_quantity -= qty
            line = self.line_item(order, fol.line_item_id)
            assert line is not None
            line.fulfilled_quantity += qty
            existing = next((x for x in ful.line_items if x.line_item_id == line.id), None)
            if existing is None:
                ful.line_items.append(FulfillmentLineItem(self._new_id(), line_item_id=line.id, quantity=qty))
            else:
                existing.quantity += qty
            if fol.inventory_item_id is not None:
                level = self.levels[(fol.inventory_item_id, fo.location_id)]
                level.committed -= qty
                level.on_hand -= qty
                level.updated_at = at
            if fo.id not in ful.fulfillment_order_ids:
                ful.fulfillment_order_ids.append(fo.id)
            fo.status = "CLOSED" if all(x.remaining_quantity == 0 for x in fo.line_items) else "IN_PROGRESS"
            fo.updated_at = at
        self.fulfillments[ful.id] = ful
        order.fulfillment_ids.append(ful.id)
        order.updated_at = at
        self.emit("fulfillments/create", payloads.fulfillment(self, ful))
        self.emit("orders/updated", payloads.order(self, order))
        status = order.fulfillment_status
        self.emit(
            "orders/fulfilled" if status == "FULFILLED" else "orders/partially_fulfilled",
            payloads.order(self, order),
        )
        return ful

    def hold(
        self,
        fo_id: int,
        *,
        reason: str,
        reason_notes: str | None = None,
        handle: str | None = None,
        external_id: str | None = None,
    ) -> tuple[FulfillmentHold, FulfillmentOrder]:
        """Put a fulfillment order on hold (``fulfillmentOrderHold``)."""
        fo = self.fulfillment_orders.get(fo_id)
        if fo is None:
            raise reject("Fulfillment order not found.", ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
        if fo.status not in ("OPEN", "IN_PROGRESS", "ON_HOLD"):
            raise reject(
                f"The fulfillment order's status must be OPEN, IN_PROGRESS or ON_HOLD, not {fo.status}.",
                ["id"],
                "INVALID_FULFILLMENT_ORDER_STATUS",
            )
        if handle is not None and any(h.handle == handle for h in fo.holds):
            raise reject(
                "A hold with this handle already exists on the fulfillment order.",
                ["fulfillmentHold", "handle"],
                "DUPLICATED_HANDLE",
            )
        hold = FulfillmentHold(
            self._new_id(), reason=reason, reason_notes=reason_notes, handle=handle, external_id=external_id
        )
        if fo.status != "ON_HOLD":
            fo.status_before_hold = fo.status
            fo.status = "ON_HOLD"
        fo.holds.append(hold)
        fo.updated_at = self.now()
        self.emit("fulfillment_orders/placed_on_hold", payloads.fulfillment_order_hold(self, fo, hold))
        return hold, fo

    def release_hold(
        self, fo_id: int, hold_ids: list[int] | None = None, external_id: str | None = None
    ) -> FulfillmentOrder:
        """Release some or all holds (``fulfillmentOrderReleaseHold``)."""
        fo = self.fulfillment_orders.get(fo_id)
        if fo is None:
            raise reject("Fulfillment order not found.", ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
        if fo.status != "ON_HOLD":
            raise reject("The fulfillment order is not on hold.", ["id"], "INVALID_ACCESS")
        if hold_ids:
            unknown = [h for h in hold_ids if all(x.id != h for x in fo.holds)]
            if unknown:
                raise reject("Hold does not exist on this fulfillment order.", ["holdIds"], "INVALID_HOLD_ID")
            fo.holds = [h for h in fo.holds if h.id not in hold_ids]
        elif external_id is not None:
            fo.holds = [h for h in fo.holds if h.external_id != external_id]
        else:
            fo.holds = []
        if not fo.holds:
            fo.status = fo.status_before_hold or "OPEN"
            fo.status_before_hold = None
        fo.updated_at = self.now()
        self.emit("fulfillment_orders/hold_released", payloads.fulfillment_order_released(self, fo))
        return fo

    def move_fulfillment_order(
        self, fo_id: int, location_id: int, items: list[tuple[int, int]] | None = None
    ) -> tuple[FulfillmentOrder, FulfillmentOrder]:
        """Assign unfulfilled units of a fulfillment order to another location (``fulfillmentOrderMove``).

        When every remaining unit moves and none of the fulfillment order was fulfilled, the
        fulfillment order itself changes location. Otherwise a new open fulfillment order at the
        new location takes the units off the original, which closes if nothing remains to ship.
        Committed stock follows the units from the old location's level to the new one's, each
        announced by ``inventory_levels/update``; the order itself does not change.

        Args:
            fo_id: the fulfillment order to move.
            location_id: the location to assign the units to.
            items: ``[(fulfillment_order_line_id, quantity)]``; ``None`` or empty for every
                remaining unit.

        Returns:
            ``(moved, original)``: the fulfillment order now holding the units at the new location,
            and the original's final state (the same fulfillment order when it moved whole).

        Raises:
            Rejected: unknown fulfillment order or location, one already at the location, closed,
            cancelled, incomplete, on hold or awaiting a fulfillment service; a line not of it, or a
            quantity above what remains; an item the new location does not stock.
        """
        fo = self.fulfillment_orders.get(fo_id)
        if fo is None:
            raise reject("Fulfillment order does not exist.", ["id"])
        if location_id not in self.locations:
            raise reject("Location does not exist.", ["newLocationId"])
        if fo.status in ("CLOSED", "CANCELLED", "INCOMPLETE", "ON_HOLD"):
            raise reject(
                f"Fulfillment order is {fo.status.lower().replace('_', ' ')} and cannot be moved.", ["id"]
            )
        if fo.request_status in ("SUBMITTED", "ACCEPTED", "CANCELLATION_REQUESTED", "CANCELLATION_REJECTED"):
            raise reject(
                f"Fulfillment order has a request status of {fo.request_status} and cannot be moved "
                "until its fulfillment service accepts a cancellation request.",
                ["id"],
            )
        if fo.location_id == location_id:
            raise reject("Fulfillment order is already assigned to the location.", ["newLocationId"])

        def stocked(fol: FulfillmentOrderLineItem) -> bool:
            return fol.inventory_item_id is None or (fol.inventory_item_id, location_id) in self.levels

        unstocked = "The new location does not stock an item of the fulfillment order."
        taken: dict[int, int] = {}
        if items:
            for index, (line_id, qty) in enumerate(items):
                where = ["fulfillmentOrderLineItems", str(index)]
                fol = next((x for x in fo.line_items if x.id == line_id), None)
                if fol is None:
                    raise reject(
                        "Fulfillment order line item does not belong to the fulfillment order.",
                        [*where, "id"],
                    )
                left = fol.remaining_quantity - taken.get(fol.id, 0)
                if qty < 1 or qty > left:
                    raise reject(
                        f"Invalid fulfillment order line item quantity requested: {qty} (remaining {left}).",
                        [*where, "quantity"],
                    )
                if not stocked(fol):
                    raise reject(unstocked, [*where, "id"])
                taken[fol.id] = taken.get(fol.id, 0) + qty
        else:
            for fol in fo.line_items:
                if fol.remaining_quantity and not stocked(fol):
                    raise reject(unstocked, ["newLocationId"])
            taken = {fol.id: fol.remaining_quantity for fol in fo.line_items if fol.remaining_quantity}
        if not taken:
            raise reject("Fulfillment order has nothing left to move.", ["id"])
        moving = [(fol, taken[fol.id]) for fol in fo.line_items if fol.id in taken]
        whole = all(
            fol.total_quantity == fol.remaining_quantity == taken.get(fol.id, 0) for fol in fo.line_items
        )

        at = self.now()
        from_location_id = fo.location_id
        if whole:
            fo.location_id = location_id
            moved = fo
        else:
            order = self.orders[fo.order_id]
            lines = []
            for fol, qty in moving:
                line = self.line_item(order, fol.line_item_id)
                assert line is not None
                lines.append((line, qty))
                fol.total_quantity -= qty
                fol.remaining_quantity -= qty
            moved = self._open_fulfillment_order(order, location_id, lines, at)
            fo.line_items = [fol for fol in fo.line_items if fol.total_quantity]
            if all(fol.remaining_quantity == 0 for fol in fo.line_items):
                fo.status = "CLOSED"
        fo.updated_at = at
        touched: dict[tuple[int, int], InventoryLevel] = {}
        for fol, qty in moving:
            if fol.inventory_item_id is None:
                continue
            source = self.levels[(fol.inventory_item_id, from_location_id)]
            target = self.levels[(fol.inventory_item_id, location_id)]
            source.committed -= qty
            target.committed += qty
            for level in (source, target):
                level.updated_at = at
                touched[(level.item_id, level.location_id)] = level
        self.fulfillment_order_moves.append(
            FulfillmentOrderMove(
                original_id=fo.id,
                moved_id=moved.id,
                order_id=fo.order_id,
                from_location_id=from_location_id,
                to_location_id=location_id,
                lines=[(fol.line_item_id, qty) for fol, qty in moving],
                created_at=at,
            )
        )
        for level in touched.values():
            self.emit("inventory_levels/update", payloads.inventory_level(self, level))
        return moved, fo

    # ----- inventory ---------------------------------------------------------------------------

    def _level_for(
        self, item_ref: str, location_ref: str, where: list[str], *, set_codes: bool = True
    ) -> InventoryLevel:
        item_id = parse_gid(item_ref, "InventoryItem")
        if item_id is None or item_id not in self.inventory_items:
            raise reject(
                "The specified inventory item could not be found.",
                [*where, "inventoryItemId"],
                "INVALID_INVENTORY_ITEM",
            )
        loc_id = parse_gid(location_ref, "Location")
        if loc_id is None or loc_id not in self.locations:
            raise reject(
                "The specified location could not be found.", [*where, "locationId"], "INVALID_LOCATION"
            )
        level = self.levels.get((item_id, loc_id))
        if level is None:
            raise reject(
                "The specified inventory item is not stocked at the location.",
                where,
                "ITEM_NOT_STOCKED_AT_LOCATION",
            )
        return level

    def set_quantities(
        self, *, name: str, reason: str, reference_document_uri: str | None, quantities: list[dict[str, Any]]
    ) -> AdjustmentGroup:
        """Set absolute quantities with compare-and-set (``inventorySetQuantities``, 2026-04 rules).

        Each quantity dict carries ``inventoryItemId``, ``locationId``, ``quantity`` and
        ``changeFromQuantity`` (``None`` opts out of the check). All or nothing.

        Raises:
            Rejected: invalid name, reason, item, location, quantity, or a stale ``changeFromQuantity``.
        """
        if name not in ("available", "on_hand"):
            raise reject(
                "The quantity name must be either 'available' or 'on_hand'.",
                ["input", "name"],
                "INVALID_NAME",
            )
        if reason not in SET_REASONS:
            raise reject("The specified reason is invalid.", ["input", "reason"], "INVALID_REASON")
        plan: list[tuple[InventoryLevel, int]] = []
        errors: list[UserError] = []
        seen: set[tuple[int, int]] = set()
        for index, q in enumerate(quantities):
            where = ["input", "quantities", str(index)]
            try:
                level = self._level_for(q["inventoryItemId"], q["locationId"], where)
            except Rejected as exc:
                errors.extend(exc.errors)
                continue
            target = int(q["quantity"])
            if target < 0:
                errors.append(
                    UserError(
                        "The quantity can't be negative.", [*where, "quantity"], "INVALID_QUANTITY_NEGATIVE"
                    )
                )
            elif target > MAX_QUANTITY:
                errors.append(
                    UserError(
                        "The total quantity can't be higher than 1,000,000,000.",
                        [*where, "quantity"],
                        "INVALID_QUANTITY_TOO_HIGH",
                    )
                )
            elif (level.item_id, level.location_id) in seen:
                errors.append(
                    UserError(
                        "The combination of inventoryItemId and locationId must be unique.",
                        where,
                        "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    )
                )
            elif q.get("changeFromQuantity") is not None and int(q["changeFromQuantity"]) != level.quantity(
                name
            ):
                errors.append(
                    UserError(
                        "The changeFromQuantity value does not match persisted value.",
                        [*where, "changeFromQuantity"],
                        "CHANGE_FROM_QUANTITY_STALE",
                    )
                )
            else:
                seen.add((level.item_id, level.location_id))
                plan.append((level, target))
        if errors:
            raise Rejected(*errors)
        at = self.now()
        group = AdjustmentGroup(
            self._new_id(), reason=reason, reference_document_uri=reference_document_uri, created_at=at
        )
        for level, target in plan:
            delta = target - level.quantity(name)
            level.on_hand += delta
            level.updated_at = at
            # Setting either name moves on_hand and available together: the unavailable states stay.
            for changed in (name, "on_hand" if name == "available" else "available"):
                group.changes.append(
                    AdjustmentChange(
                        changed, delta, level.quantity(changed), level.item_id, level.location_id
                    )
                )
        self.adjustment_groups[group.id] = group
        for level, _ in plan:
            self.emit("inventory_levels/update", payloads.inventory_level(self, level))
        return group

    def adjust_quantities(
        self, *, name: str, reason: str, reference_document_uri: str | None, changes: list[dict[str, Any]]
    ) -> AdjustmentGroup:
        """Apply deltas (``inventoryAdjustQuantities``); ``committed`` is Shopify's own, not adjustable."""
        if name not in ADJUSTABLE_NAMES:
            raise reject(
                f"The quantity name must be one of {', '.join(sorted(ADJUSTABLE_NAMES))}.",
                ["input", "name"],
                "INVALID_QUANTITY_NAME",
            )
        if reason not in SET_REASONS:
            raise reject("The specified reason is invalid.", ["input", "reason"], "INVALID_REASON")
        plan: list[tuple[InventoryLevel, int, str | None]] = []
        errors: list[UserError] = []
        for index, change in enumerate(changes):
            where = ["input", "changes", str(index)]
            try:
                level = self._level_for(change["inventoryItemId"], change["locationId"], where)
            except Rejected as exc:
                errors.extend(exc.errors)
                continue
            cfq = change.get("changeFromQuantity")
            if cfq is not None and int(cfq) != level.quantity(name):
                errors.append(
                    UserError(
                        "The changeFromQuantity value does not match persisted value.",
                        [*where, "changeFromQuantity"],
                        "CHANGE_FROM_QUANTITY_STALE",
                    )
                )
                continue
            plan.append((level, int(change["delta"]), change.get("ledgerDocumentUri")))
        if errors:
            raise Rejected(*errors)
        at = self.now()
        group = AdjustmentGroup(
            self._new_id(), reason=reason, reference_document_uri=reference_document_uri, created_at=at
        )
        for level, delta, ledger in plan:
            changed = [name]
            if name in ("available", "on_hand"):
                level.on_hand += delta
                changed.append("on_hand" if name == "available" else "available")
            elif name == "incoming":
                level.incoming += delta
            else:
                # Moving stock into an unavailable state out of available keeps on_hand (Shopify's
                # inventoryAdjustQuantities on e.g. "damaged" adds to on_hand too).
                setattr(level, name, level.quantity(name) + delta)
                level.on_hand += delta
                changed.append("on_hand")
            level.updated_at = at
            for each in changed:
                group.changes.append(
                    AdjustmentChange(
                        each, delta, level.quantity(each), level.item_id, level.location_id, ledger
                    )
                )
        self.adjustment_groups[group.id] = group
        for level, _, _ in plan:
            self.emit("inventory_levels/update", payloads.inventory_level(self, level))
        return group

    def product_set(
        self, spec: dict[str, Any], product_id: int | None = None, handle: str | None = None
    ) -> tuple[Product, bool]:
        """Create or update a product and its variants by SKU (``productSet``): ``(product, created)``."""
        product = self.products.get(product_id) if product_id is not None else None
        if product_id is not None and product is None:
            raise reject("Product does not exist", ["identifier", "id"], "PRODUCT_DOES_NOT_EXIST")
        handle = handle or spec.get("handle")
        if product is None and handle:
            product = next((p for p in self.products.values() if p.handle == handle), None)
        title = spec.get("title")
        at = self.now()
        created = product is None
        if product is None:
            if not title:
                raise reject("Title can't be blank", ["input", "title"], "BLANK")
            product = Product(
                self._new_id(),
                title=title,
                handle=handle or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
                created_at=at,
                updated_at=at,
            )
            self.products[product.id] = product
        for key in ("title", "vendor", "productType", "status"):
            if spec.get(key) is not None:
                setattr(product, {"productType": "product_type"}.get(key, key), spec[key])
        product.updated_at = at
        for index, vspec in enumerate(spec.get("variants") or []):
            sku = vspec.get("sku") or (vspec.get("inventoryItem") or {}).get("sku")
            if not sku:
                raise reject(
                    "Every variant needs a SKU in the sandbox.",
                    ["input", "variants", str(index), "sku"],
                    "INVALID_VARIANT",
                )
            variant = self.variant_by_sku(sku)
            if variant is not None and variant.product_id != product.id:
                raise reject(
                    f"SKU {sku} belongs to another product.",
                    ["input", "variants", str(index), "sku"],
                    "INVALID_VARIANT",
                )
            if variant is None:
                variant = self._add_variant(
                    product,
                    sku=sku,
                    price=Decimal(str(vspec.get("price") or "0.00")),
                    grams=0,
                    at=at,
                    stock=False,
                )
            if vspec.get("price") is not None:
                variant.price = Decimal(str(vspec["price"]))
            if vspec.get("inventoryPolicy"):
                variant.inventory_policy = vspec["inventoryPolicy"]
            variant.updated_at = at
            for q in vspec.get("inventoryQuantities") or []:
                loc_id = parse_gid(q["locationId"], "Location")
                level = self.levels.get((variant.inventory_item_id, loc_id or 0))
                if level is None:
                    raise reject(
                        "The specified location could not be found.",
                        ["input", "variants", str(index), "inventoryQuantities", "locationId"],
                        "INVALID_LOCATION",
                    )
                level.on_hand += int(q["quantity"]) - level.quantity(q.get("name", "available"))
                level.updated_at = at
        self.emit("products/create" if created else "products/update", payloads.product(self, product))
        return product, created

    # ----- returns and refunds ----------------------------------------------------------------

    def request_return(self, order_id: int, lines: list[tuple[int, int, str, str]]) -> Return:
        """A customer asks to send back fulfilled units (``returns/request``).

        Args:
            lines: ``(line_item_id, quantity, reason, note)``; reason is a ``ReturnReason`` value.
        """
        order = self.get_order(order_id)
        if not lines:
            raise reject("A return needs at least one line.", ["returnLineItems"], "BLANK")
        at = self.now()
        ret = Return(
            self._new_id(),
            order_id=order.id,
            name=f"{order.name}-R{len(order.return_ids) + 1}",
            created_at=at,
        )
        for index, (line_id, qty, reason, note) in enumerate(lines):
            line = self.line_item(order, line_id)
            if line is None:
                raise reject(
                    "Line item does not exist.", ["returnLineItems", str(index), "lineItemId"], "NOT_FOUND"
                )
            if qty < 1 or qty > self._returnable(order, line):
                raise reject(
                    "Only fulfilled, not yet returned units can be returned.",
                    ["returnLineItems", str(index), "quantity"],
                    "INVALID",
                )
            ful_line = next(
                (
                    fl
                    for fid in order.fulfillment_ids
                    for fl in self.fulfillments[fid].line_items
                    if fl.line_item_id == line.id
                ),
                None,
            )
            assert ful_line is not None
            ret.line_items.append(
                ReturnLineItem(
                    self._new_id(),
                    fulfillment_line_item_id=ful_line.id,
                    line_item_id=line.id,
                    quantity=qty,
                    return_reason=reason,
                    return_reason_note=note,
                )
            )
        self.returns[ret.id] = ret
        order.return_ids.append(ret.id)
        order.updated_at = at
        self.emit("returns/request", payloads.return_(self, ret))
        return ret

    def _returnable(self, order: Order, line: LineItem) -> int:
        returned = sum(
            rl.quantity
            for rid in order.return_ids
            for rl in self.returns[rid].line_items
            if rl.line_item_id == line.id and self.returns[rid].status not in ("DECLINED", "CANCELED")
        )
        return line.fulfilled_quantity - returned

    def approve_return(self, return_id: int) -> Return:
        """Approve a requested return; opens its reverse fulfillment order (``returns/approve``)."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise reject("Return does not exist.", ["input", "id"], "NOT_FOUND")
        if ret.status != "REQUESTED":
            raise reject("Only a requested return can be approved.", ["input", "id"], "INVALID_STATE")
        rfo = ReverseFulfillmentOrder(self._new_id(), return_id=ret.id, order_id=ret.order_id)
        for rl in ret.line_items:
            rfo.line_items.append(
                ReverseFulfillmentOrderLineItem(
                    self._new_id(),
                    return_line_item_id=rl.id,
                    fulfillment_line_item_id=rl.fulfillment_line_item_id,
                    line_item_id=rl.line_item_id,
                    total_quantity=rl.quantity,
                )
            )
        self.reverse_fulfillment_orders[rfo.id] = rfo
        ret.reverse_fulfillment_order_ids.append(rfo.id)
        ret.status = "OPEN"
        self._touch_order(self.orders[ret.order_id])
        self.emit("returns/approve", payloads.return_(self, ret))
        return ret

    def dispose(
        self, dispositions: list[tuple[int, int, str, int | None]]
    ) -> list[ReverseFulfillmentOrderLineItem]:
        """Say what happened to received units (``reverseFulfillmentOrderDispose``).

        Args:
            dispositions: ``(reverse_fulfillment_order_line_id, quantity, type, location_id)``;
                ``RESTOCKED`` needs a location and puts the units back on hand there.
        """
        plan = []
        for index, (line_id, qty, kind, loc_id) in enumerate(dispositions):
            where = ["dispositionInputs", str(index)]
            found = self.find_reverse_line(line_id)
            if found is None:
                raise reject(
                    "Reverse fulfillment order line item does not exist.",
                    [*where, "reverseFulfillmentOrderLineItemId"],
                    "NOT_FOUND",
                )
            rfo, line = found
            if rfo.status != "OPEN":
                raise reject("The reverse fulfillment order is not open.", where, "INVALID_STATE")
            if qty < 1 or qty > line.total_quantity - line.disposed_quantity:
                raise reject(
                    "Quantity is more than what is left to dispose.", [*where, "quantity"], "INVALID"
                )
            if kind == "RESTOCKED" and (loc_id is None or loc_id not in self.locations):
                raise reject("A location is required to restock.", [*where, "locationId"], "INVALID")
            plan.append((rfo, line, qty, kind, loc_id))
        at = self.now()
        touched_rfos: dict[int, ReverseFulfillmentOrder] = {}
        for rfo, line, qty, kind, loc_id in plan:
            line.dispositions.append(
                Disposition(
                    self._new_id(),
                    quantity=qty,
                    type=kind,
                    location_id=loc_id if kind == "RESTOCKED" else None,
                )
            )
            if kind == "RESTOCKED":
                order = self.orders[rfo.order_id]
                order_line = self.line_item(order, line.line_item_id)
                variant = (
                    self.variants.get(order_line.variant_id) if order_line and order_line.variant_id else None
                )
                if variant is not None:
                    level = self.levels[(variant.inventory_item_id, loc_id)]
                    level.on_hand += qty
                    level.updated_at = at
            touched_rfos[rfo.id] = rfo
        for rfo in touched_rfos.values():
            self.emit("reverse_fulfillment_orders/dispose", payloads.disposal(self, rfo))
        return [line for _, line, _, _, _ in plan]

    def process_return(
        self,
        return_id: int,
        lines: list[tuple[int, int]],
        *,
        refund: bool = False,
        refund_shipping: bool = False,
    ) -> tuple[Return, Refund | None]:
        """Process returned units (``returnProcess``), maybe refunding them; closes the return when done."""
        ret = self.returns.get(return_id)
        if ret is None:
            raise reject("Return does not exist.", ["input", "returnId"], "NOT_FOUND")
        if ret.status != "OPEN":
            raise reject("Only an open return can be processed.", ["input", "returnId"], "INVALID_STATE")
        plan = []
        for index, (line_id, qty) in enumerate(lines):
            rl = next((x for x in ret.line_items if x.id == line_id), None)
            if rl is None:
                raise reject(
                    "Return line item does not exist.",
                    ["input", "returnLineItems", str(index), "id"],
                    "NOT_FOUND",
                )
            if qty < 1 or qty > rl.quantity - rl.processed_quantity:
                raise reject(
                    "Quantity is more than what is left to process.",
                    ["input", "returnLineItems", str(index), "quantity"],
                    "INVALID",
                )
            plan.append((rl, qty))
        for rl, qty in plan:
            rl.processed_quantity += qty
        made = None
        if refund and plan:
            made = self.refund(
                ret.order_id,
                note=f"Return {ret.name}",
                lines=[(rl.line_item_id, qty, "NO_RESTOCK", None) for rl, qty in plan],
                full_shipping=refund_shipping,
                return_id=ret.id,
            )
        at = self.now()
        if all(rl.processed_quantity == rl.quantity for rl in ret.line_items):
            ret.status = "CLOSED"
            ret.closed_at = at
            for rfo_id in ret.reverse_fulfillment_order_ids:
                self.reverse_fulfillment_orders[rfo_id].status = "CLOSED"
        self._touch_order(self.orders[ret.order_id])
        self.emit("returns/process", payloads.return_(self, ret))
        if ret.status == "CLOSED":
            self.emit("returns/close", payloads.return_closed(self, ret))
        return ret, made

    def refund(
        self,
        order_id: int,
        *,
        note: str | None,
        lines: list[tuple[int, int, str, int | None]],
        full_shipping: bool = False,
        shipping_amount: Decimal | None = None,
        return_id: int | None = None,
    ) -> Refund:
        """Refund units and/or shipping (``refundCreate``); announces ``refunds/create``.

        Args:
            lines: ``(line_item_id, quantity, restock_type, location_id)`` with restock types
                ``CANCEL`` (unfulfilled units, back to available), ``RETURN`` (fulfilled units back on
                hand at ``location_id``) or ``NO_RESTOCK``.
        """
        order = self.get_order(order_id)
        plan = []
        for index, (line_id, qty, restock, loc_id) in enumerate(lines):
            where = ["refundLineItems", str(index)]
            line = self.line_item(order, line_id)
            if line is None:
                raise reject("Line item does not exist.", [*where, "lineItemId"], "NOT_FOUND")
            if qty < 1 or qty > line.quantity - line.refunded_quantity:
                raise reject(
                    "Quantity cannot refund more items than were purchased.", [*where, "quantity"], "INVALID"
                )
            if restock == "CANCEL" and qty > line.unfulfilled_quantity:
                raise reject("Only unfulfilled units can be cancelled.", [*where, "restockType"], "INVALID")
            if restock == "RETURN" and (loc_id is None or loc_id not in self.locations):
                raise reject(
                    "A location is required to restock returned units.", [*where, "locationId"], "INVALID"
                )
            plan.append((line, qty, restock, loc_id))
        shipping = order.shipping_price if full_shipping else (shipping_amount or Decimal("0.00"))
        if not plan and not shipping:
            raise reject("Nothing to refund.", ["refundLineItems"], "BLANK")
        at = self.now()
        made = Refund(
            self._new_id(),
            order_id=order.id,
            note=note,
            shipping_amount=shipping,
            return_id=return_id,
            created_at=at,
        )
        for line, qty, restock, loc_id in plan:
            line.refunded_quantity += qty
            if restock == "CANCEL":
                self._release_unfulfilled(order, line, qty, restock=True)
            elif restock == "RETURN" and line.variant_id:
                level = self.levels[(self.variants[line.variant_id].inventory_item_id, loc_id)]
                level.on_hand += qty
                level.updated_at = at
            made.line_items.append(
                RefundLineItem(
                    self._new_id(),
                    line_item_id=line.id,
                    quantity=qty,
                    restock_type=restock,
                    location_id=loc_id,
                    subtotal=line.price * qty,
                )
            )
        amount = sum((x.subtotal for x in made.line_items), Decimal("0.00")) + shipping
        made.transactions.append(self._refund_transaction(order, amount, at))
        self.refunds[made.id] = made
        order.refund_ids.append(made.id)
        refunded = sum((r.total for r in (self.refunds[x] for x in order.refund_ids)), Decimal("0.00"))
        order.financial_status = "REFUNDED" if refunded >= order.original_total else "PARTIALLY_REFUNDED"
        order.updated_at = at
        self.emit("refunds/create", payloads.refund(self, made))
        self.emit("orders/updated", payloads.order(self, order))
        return made

    # ----- webhook subscriptions ---------------------------------------------------------------

    def create_subscription(
        self,
        topic: str,
        uri: str,
        *,
        fmt: str = "JSON",
        name: str | None = None,
        include_fields: list[str] | None = None,
        filter_: str | None = None,
    ) -> WebhookSubscription:
        """Register a webhook subscription (``webhookSubscriptionCreate``)."""
        if topic not in TOPICS.values():
            raise reject(f"Topic {topic} is not supported by the sandbox.", ["topic"], "INVALID")
        if not re.match(r"^https?://[^\s/]+", uri or ""):
            raise reject("Address is invalid", ["webhookSubscription", "uri"], "INVALID")
        if any(s.topic == topic and s.uri == uri for s in self.subscriptions.values()):
            raise reject(
                "Address for this topic has already been taken", ["webhookSubscription", "uri"], "TAKEN"
            )
        at = self.now()
        sub = WebhookSubscription(
            self._new_id(),
            topic=topic,
            uri=uri,
            format=fmt,
            name=name,
            include_fields=list(include_fields or []),
            filter=filter_,
            created_at=at,
            updated_at=at,
        )
        self.subscriptions[sub.id] = sub
        return sub

    def delete_subscription(self, sub_id: int) -> WebhookSubscription:
        """Delete a webhook subscription (``webhookSubscriptionDelete``)."""
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            raise reject("Webhook subscription does not exist", ["id"], "NOT_FOUND")
        return sub

    # ----- inspection --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready summary for ``GET /_sandbox/state``."""
        inventory = {}
        for item in sorted(self.inventory_items.values(), key=lambda i: i.sku):
            inventory[item.sku] = {
                "inventory_item_id": item.gid,
                "levels": {
                    self.locations[loc_id].code: self.levels[(item.id, loc_id)].quantities()
                    for loc_id in self.locations
                    if (item.id, loc_id) in self.levels
                },
            }
        return {
            "shop": {"id": self.shop.gid, "domain": self.shop_domain, "seed": self.seed},
            "locations": [
                {"id": loc.gid, "code": loc.code, "name": loc.name} for loc in self.locations.values()
            ],
            "products": [
                {
                    "id": p.gid,
                    "title": p.title,
                    "handle": p.handle,
                    "skus": [self.variants[v].sku for v in p.variant_ids],
                }
                for p in self.products.values()
            ],
            "inventory": inventory,
            "customers": [{"id": c.gid, "email": c.email} for c in self.customers.values()],
            "orders": [
                {
                    "id": o.id,
                    "admin_graphql_api_id": o.gid,
                    "name": o.name,
                    "updated_at": o.updated_at.isoformat() if o.updated_at else None,
                    "financial_status": o.financial_status,
                    "fulfillment_status": o.fulfillment_status,
                    "cancelled": o.cancelled_at is not None,
                    "lines": [
                        {
                            "id": li.id,
                            "sku": li.sku,
                            "quantity": li.quantity,
                            "current_quantity": li.current_quantity,
                            "fulfilled": li.fulfilled_quantity,
                        }
                        for li in o.line_items
                    ],
                    "fulfillment_orders": [
                        {
                            "id": fo.gid,
                            "location": self.locations[fo.location_id].code,
                            "status": fo.status,
                            "holds": len(fo.holds),
                        }
                        for fo in (self.fulfillment_orders[f] for f in o.fulfillment_order_ids)
                    ],
                    "fulfillments": [self.fulfillments[f].gid for f in o.fulfillment_ids],
                    "refunds": [self.refunds[r].gid for r in o.refund_ids],
                    "returns": [
                        {"id": self.returns[r].gid, "status": self.returns[r].status} for r in o.return_ids
                    ],
                }
                for o in self.orders.values()
            ],
            "webhook_subscriptions": [
                {"id": s.gid, "topic": s.topic, "uri": s.uri, "consecutive_failures": s.consecutive_failures}
                for s in self.subscriptions.values()
            ],
        }


__all__ = [
    "QUANTITY_NAMES",
    "TOPICS",
    "UNAVAILABLE_NAMES",
    "Rejected",
    "Store",
    "UserError",
    "parse_gid",
    "reject",
]
