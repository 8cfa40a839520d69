"""The Shopify stand-in's records: plain dataclasses named and shaped after Shopify's objects.

Ids are 64-bit integers (most above 2**53, as Shopify's are, so a client that parses JSON numbers
as doubles loses precision here exactly as it would in production); ``gid`` gives the Admin
GraphQL global id. Status fields hold the GraphQL enum names (``OPEN``, ``ON_HOLD``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

UNAVAILABLE_NAMES = ("committed", "reserved", "damaged", "safety_stock", "quality_control")
"""Quantities that are on hand but not available (on_hand = available + these)."""

QUANTITY_NAMES = ("available", "on_hand", "incoming", *UNAVAILABLE_NAMES)
"""Every named inventory quantity Shopify reports."""


def gid(kind: str, ident: int) -> str:
    """The Admin GraphQL global id of a record: ``gid://shopify/<Kind>/<id>``."""
    return f"gid://shopify/{kind}/{ident}"


@dataclass
class Entity:
    """A record with a numeric id and a global id."""

    KIND: ClassVar[str] = ""
    id: int

    @property
    def gid(self) -> str:
        """``gid://shopify/<KIND>/<id>``."""
        return gid(self.KIND, self.id)

    @property
    def legacy_resource_id(self) -> str:
        """The numeric id as a string (GraphQL ``UnsignedInt64``)."""
        return str(self.id)


@dataclass
class Shop(Entity):
    """The shop itself."""

    KIND: ClassVar[str] = "Shop"
    name: str = ""
    myshopify_domain: str = ""
    email: str = ""
    currency_code: str = "USD"


@dataclass
class Location(Entity):
    """A place that stocks inventory and fulfils orders."""

    KIND: ClassVar[str] = "Location"
    code: str = ""
    name: str = ""
    address: dict = field(default_factory=dict)
    is_active: bool = True
    fulfills_online_orders: bool = True


@dataclass
class Product(Entity):
    """A product with its variants."""

    KIND: ClassVar[str] = "Product"
    title: str = ""
    handle: str = ""
    vendor: str = ""
    product_type: str = ""
    status: str = "ACTIVE"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class Variant(Entity):
    """A sellable variant; one inventory item each."""

    KIND: ClassVar[str] = "ProductVariant"
    product_id: int = 0
    title: str = "Default Title"
    sku: str = ""
    price: Decimal = Decimal("0.00")
    grams: int = 0
    inventory_policy: str = "DENY"
    inventory_item_id: int = 0
    barcode: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class InventoryItem(Entity):
    """The stock-keeping side of a variant."""

    KIND: ClassVar[str] = "InventoryItem"
    sku: str = ""
    variant_id: int = 0
    tracked: bool = True
    requires_shipping: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class InventoryLevel:
    """Quantities of one inventory item at one location. ``available`` is derived."""

    item_id: int
    location_id: int
    on_hand: int = 0
    incoming: int = 0
    committed: int = 0
    reserved: int = 0
    damaged: int = 0
    safety_stock: int = 0
    quality_control: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def gid(self) -> str:
        """Shopify's inventory level gid: the location id with the item id as a query."""
        return f"gid://shopify/InventoryLevel/{self.location_id}?inventory_item_id={self.item_id}"

    @property
    def available(self) -> int:
        """On hand minus every unavailable state (Shopify's rule)."""
        return self.on_hand - sum(getattr(self, name) for name in UNAVAILABLE_NAMES)

    def quantity(self, name: str) -> int:
        """The named quantity."""
        return getattr(self, name)

    def quantities(self) -> dict[str, int]:
        """Every named quantity."""
        return {name: self.quantity(name) for name in QUANTITY_NAMES}


@dataclass
class Customer(Entity):
    """A customer with one default address."""

    KIND: ClassVar[str] = "Customer"
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str | None = None
    address_id: int = 0
    address: dict = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def display_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class LineItem(Entity):
    """One order line. ``current_quantity`` excludes removed (edited, refunded-unfulfilled) units."""

    KIND: ClassVar[str] = "LineItem"
    variant_id: int | None = None
    product_id: int | None = None
    sku: str = ""
    title: str = ""
    variant_title: str | None = None
    vendor: str | None = None
    price: Decimal = Decimal("0.00")
    grams: int = 0
    quantity: int = 0
    current_quantity: int = 0
    fulfilled_quantity: int = 0
    refunded_quantity: int = 0

    @property
    def unfulfilled_quantity(self) -> int:
        """Units still to ship."""
        return max(0, self.current_quantity - self.fulfilled_quantity)


@dataclass
class FulfillmentOrderLineItem(Entity):
    """A line of a fulfillment order."""

    KIND: ClassVar[str] = "FulfillmentOrderLineItem"
    line_item_id: int = 0
    inventory_item_id: int | None = None
    total_quantity: int = 0
    remaining_quantity: int = 0


@dataclass
class FulfillmentHold(Entity):
    """A hold placed on a fulfillment order."""

    KIND: ClassVar[str] = "FulfillmentHold"
    reason: str = "OTHER"
    reason_notes: str | None = None
    handle: str | None = None
    external_id: str | None = None
    held_by_requesting_app: bool = True


@dataclass
class FulfillmentOrder(Entity):
    """The work of shipping an order's lines from one location."""

    KIND: ClassVar[str] = "FulfillmentOrder"
    order_id: int = 0
    location_id: int = 0
    status: str = "OPEN"
    request_status: str = "UNSUBMITTED"
    line_items: list[FulfillmentOrderLineItem] = field(default_factory=list)
    holds: list[FulfillmentHold] = field(default_factory=list)
    status_before_hold: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class FulfillmentOrderMove:
    """One ``fulfillmentOrderMove``, kept for the stand-in's records (Shopify has no such object).

    ``lines`` holds ``(line_item_id, quantity)`` of the units moved; ``moved_id`` is the original's
    own id when the whole fulfillment order changed location.
    """

    original_id: int
    moved_id: int
    order_id: int
    from_location_id: int
    to_location_id: int
    lines: list[tuple[int, int]] = field(default_factory=list)
    created_at: datetime | None = None


@dataclass
class Tracking:
    """One tracking number of a fulfillment."""

    company: str | None = None
    number: str | None = None
    url: str | None = None


@dataclass
class FulfillmentLineItem(Entity):
    """Units of one order line shipped in a fulfillment."""

    KIND: ClassVar[str] = "FulfillmentLineItem"
    line_item_id: int = 0
    quantity: int = 0


@dataclass
class Fulfillment(Entity):
    """A shipment of some fulfillment-order lines, with tracking."""

    KIND: ClassVar[str] = "Fulfillment"
    order_id: int = 0
    location_id: int = 0
    name: str = ""
    status: str = "SUCCESS"
    shipment_status: str | None = None
    tracking: list[Tracking] = field(default_factory=list)
    line_items: list[FulfillmentLineItem] = field(default_factory=list)
    fulfillment_order_ids: list[int] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Transaction(Entity):
    """A payment transaction (sale or refund)."""

    KIND: ClassVar[str] = "OrderTransaction"
    order_id: int = 0
    kind: str = "SALE"
    gateway: str = "bogus"
    status: str = "SUCCESS"
    amount: Decimal = Decimal("0.00")
    parent_id: int | None = None
    test: bool = True
    created_at: datetime | None = None


@dataclass
class RefundLineItem(Entity):
    """Units of one order line refunded."""

    KIND: ClassVar[str] = "RefundLineItem"
    line_item_id: int = 0
    quantity: int = 0
    restock_type: str = "NO_RESTOCK"
    location_id: int | None = None
    subtotal: Decimal = Decimal("0.00")


@dataclass
class Refund(Entity):
    """Money (and maybe stock) given back on an order."""

    KIND: ClassVar[str] = "Refund"
    order_id: int = 0
    note: str | None = None
    line_items: list[RefundLineItem] = field(default_factory=list)
    shipping_amount: Decimal = Decimal("0.00")
    transactions: list[Transaction] = field(default_factory=list)
    return_id: int | None = None
    created_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        """Amount refunded."""
        return sum((t.amount for t in self.transactions), Decimal("0.00"))


@dataclass
class ReturnLineItem(Entity):
    """Units of a fulfilled line the customer sends back."""

    KIND: ClassVar[str] = "ReturnLineItem"
    fulfillment_line_item_id: int = 0
    line_item_id: int = 0
    quantity: int = 0
    processed_quantity: int = 0
    return_reason: str = "UNKNOWN"
    return_reason_note: str = ""


@dataclass
class Disposition(Entity):
    """What happened to returned units: restocked, not restocked, missing..."""

    KIND: ClassVar[str] = "ReverseFulfillmentOrderDisposition"
    quantity: int = 0
    type: str = "RESTOCKED"
    location_id: int | None = None


@dataclass
class ReverseFulfillmentOrderLineItem(Entity):
    """A line of a reverse fulfillment order."""

    KIND: ClassVar[str] = "ReverseFulfillmentOrderLineItem"
    return_line_item_id: int = 0
    fulfillment_line_item_id: int = 0
    line_item_id: int = 0
    total_quantity: int = 0
    dispositions: list[Disposition] = field(default_factory=list)

    @property
    def disposed_quantity(self) -> int:
        """Units already given a disposition."""
        return sum(d.quantity for d in self.dispositions)


@dataclass
class ReverseFulfillmentOrder(Entity):
    """The work of receiving a return's units."""

    KIND: ClassVar[str] = "ReverseFulfillmentOrder"
    return_id: int = 0
    order_id: int = 0
    status: str = "OPEN"
    line_items: list[ReverseFulfillmentOrderLineItem] = field(default_factory=list)


@dataclass
class Return(Entity):
    """A customer's return of fulfilled units."""

    KIND: ClassVar[str] = "Return"
    order_id: int = 0
    name: str = ""
    status: str = "REQUESTED"
    line_items: list[ReturnLineItem] = field(default_factory=list)
    reverse_fulfillment_order_ids: list[int] = field(default_factory=list)
    created_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def total_quantity(self) -> int:
        """Units in the return."""
        return sum(li.quantity for li in self.line_items)


@dataclass
class Order(Entity):
    """A customer order."""

    KIND: ClassVar[str] = "Order"
    number: int = 0
    token: str = ""
    confirmation_number: str = ""
    email: str = ""
    customer_id: int | None = None
    shipping_address: dict = field(default_factory=dict)
    billing_address: dict = field(default_factory=dict)
    line_items: list[LineItem] = field(default_factory=list)
    shipping_line_id: int = 0
    shipping_price: Decimal = Decimal("0.00")
    financial_status: str = "PAID"
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    test: bool = False
    cancel_reason: str | None = None
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fulfillment_order_ids: list[int] = field(default_factory=list)
    fulfillment_ids: list[int] = field(default_factory=list)
    refund_ids: list[int] = field(default_factory=list)
    return_ids: list[int] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``#1001``."""
        return f"#{self.number}"

    @property
    def subtotal(self) -> Decimal:
        """Sum of current line prices."""
        return sum((li.price * li.current_quantity for li in self.line_items), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        """Subtotal plus shipping (the stand-in charges no tax)."""
        return self.subtotal + self.shipping_price

    @property
    def original_total(self) -> Decimal:
        """Total as ordered, before edits and refunds."""
        return sum((li.price * li.quantity for li in self.line_items), Decimal("0.00")) + self.shipping_price

    @property
    def fulfillment_status(self) -> str:
        """The ``displayFulfillmentStatus`` enum value."""
        shipped = sum(li.fulfilled_quantity for li in self.line_items)
        wanted = sum(li.current_quantity for li in self.line_items)
        if shipped == 0:
            return "UNFULFILLED"
        if shipped >= wanted:
            return "FULFILLED"
        return "PARTIALLY_FULFILLED"


@dataclass
class AdjustmentChange:
    """One quantity change in an adjustment group."""

    name: str
    delta: int
    quantity_after_change: int
    item_id: int
    location_id: int
    ledger_document_uri: str | None = None


@dataclass
class AdjustmentGroup(Entity):
    """The result of ``inventorySetQuantities`` / ``inventoryAdjustQuantities``."""

    KIND: ClassVar[str] = "InventoryAdjustmentGroup"
    reason: str = ""
    reference_document_uri: str | None = None
    changes: list[AdjustmentChange] = field(default_factory=list)
    created_at: datetime | None = None


@dataclass
class Job(Entity):
    """An asynchronous job (``orderCancel``)."""

    KIND: ClassVar[str] = "Job"
    done: bool = False


@dataclass
class WebhookSubscription(Entity):
    """A registered webhook subscription."""

    KIND: ClassVar[str] = "WebhookSubscription"
    topic: str = ""
    uri: str = ""
    format: str = "JSON"
    name: str | None = None
    include_fields: list[str] = field(default_factory=list)
    filter: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    consecutive_failures: int = 0
