"""The sales order as the order actor holds it, and its vocabulary.

Pure data (pydantic models): no protobuf, gRPC, NATS or SQL. Sub-structures the state machine never
reasons about (customer, totals, tax lines, address, external references) are kept as the JSON
mapping of their canonical message, so the api and event mappers can restore them exactly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Status(StrEnum):
    """Where an order is (retail.orders.v1.OrderStatus without its prefix)."""

    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    BACKORDERED = "BACKORDERED"
    ERP_CREATED = "ERP_CREATED"
    RELEASED = "RELEASED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    INVOICED = "INVOICED"
    ON_HOLD = "ON_HOLD"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class System(StrEnum):
    """Who owns a fact or a transition (retail.common.v1.SourceSystem without its prefix)."""

    SHOPIFY = "SHOPIFY"
    ERP = "ERP"
    TPL = "TPL"
    MESH = "MESH"
    OPERATOR = "OPERATOR"


class Owner(StrEnum):
    """Which operations team works an exception (V3)."""

    CUSTOMER_SERVICE = "customer_service"
    FINANCE = "finance"
    WAREHOUSE = "warehouse"


TERMINAL = frozenset({Status.INVOICED, Status.CANCELLED})
#: Statuses in which nothing has been released to a warehouse yet.
PRE_RELEASE = frozenset(
    {
        Status.RECEIVED,
        Status.BACKORDERED,
        Status.ACCEPTED,
        Status.ERP_CREATED,
        Status.ON_HOLD,
        Status.REJECTED,
    }
)


class Line(BaseModel):
    """One order line and where its quantities are.

    Attributes:
        allocations: reserved quantity per location (inventory may split a line).
        cancel_requested: quantity whose cancellation a warehouse has not answered yet.
    """

    line_id: str
    sku: str
    title: str = ""
    quantity: int
    unit_price: dict[str, Any] = Field(default_factory=dict)
    discount_total: dict[str, Any] | None = None
    tax_total: dict[str, Any] | None = None
    channel_line: dict[str, Any] | None = None
    allocations: dict[str, int] = Field(default_factory=dict)
    released: dict[str, int] = Field(default_factory=dict)
    quantity_shipped: int = 0
    quantity_cancelled: int = 0
    cancel_requested: int = 0

    @property
    def open_quantity(self) -> int:
        """Quantity not cancelled."""
        return self.quantity - self.quantity_cancelled

    @property
    def to_ship(self) -> int:
        """Quantity not cancelled and not yet shipped."""
        return max(0, self.open_quantity - self.quantity_shipped)

    @property
    def reserved(self) -> int:
        """Quantity reserved at any location."""
        return sum(self.allocations.values())

    @property
    def short(self) -> int:
        """Quantity still to reserve."""
        return max(0, self.open_quantity - self.reserved)

    @property
    def location_id(self) -> str:
        """The (first) location that reserves and ships this line, or ''."""
        return next(iter(self.allocations), "")

    def status(self, order_status: Status | None) -> str:
        """The line's LineStatus name."""
        if self.quantity_cancelled >= self.quantity:
            return "CANCELLED"
        if self.quantity_shipped >= self.open_quantity:
            return "SHIPPED"
        if self.quantity_shipped > 0:
            return "PARTIALLY_SHIPPED"
        if self.cancel_requested > 0:
            return "CANCEL_REQUESTED"
        if sum(self.released.values()) > 0:
            return "RELEASED"
        if self.short == 0 and self.reserved > 0:
            return "RESERVED"
        if order_status is Status.BACKORDERED and self.short > 0:
            return "BACKORDERED"
        return "OPEN"


class Hold(BaseModel):
    """A hold on the order; active while released_at is None."""

    hold_id: str
    reason: str
    note: str = ""
    placed_by: System
    placed_at: datetime
    released_at: datetime | None = None


class StatusChange(BaseModel):
    """One transition in the status history."""

    from_status: Status | None
    to_status: Status
    source: System
    at: datetime
    caused_by: str = ""
    note: str = ""


class Release(BaseModel):
    """What was released to one warehouse; release_id is the 3PL idempotency key.

    state: SENT, ACCEPTED, REJECTED, CANCEL_REQUESTED, CANCELLED.
    """

    release_id: str
    location_id: str
    lines: dict[str, int]
    state: str = "SENT"


class JournalEntry(BaseModel):
    """A fact the order saw, applied or not: the order's timeline (V5).

    outcome: SUCCEEDED (applied), STALE (older than what is applied), REFUSED (not allowed in the
    status, recorded and ignored), DUPLICATE.
    """

    at: datetime
    type: str
    source: System
    summary: str = ""
    outcome: str = "SUCCEEDED"
    message_id: str = ""


class Order(BaseModel):
    """The canonical sales order plus the bookkeeping the state machine needs."""

    order_id: str
    channel: str
    #: The correlation id of the order's flow (its first ingest), for tracing and support.
    correlation_id: str = ""
    channel_order: dict[str, Any] = Field(default_factory=dict)
    customer: dict[str, Any] = Field(default_factory=dict)
    lines: list[Line]
    totals: dict[str, Any] = Field(default_factory=dict)
    tax_lines: list[dict[str, Any]] = Field(default_factory=list)
    shipping_address: dict[str, Any] | None = None
    shipping_method: str = ""
    payment_status: str = ""
    placed_at: datetime | None = None
    channel_updated_at: datetime | None = None
    status: Status = Status.RECEIVED
    resume_status: Status | None = None
    holds: list[Hold] = Field(default_factory=list)
    rejection_reason: str | None = None
    rejection_detail: str = ""
    erp_sales_order: dict[str, Any] | None = None
    replacement_of_order_id: str = ""
    replacements: list[str] = Field(default_factory=list)
    history: list[StatusChange] = Field(default_factory=list)
    journal: list[JournalEntry] = Field(default_factory=list)
    releases: list[Release] = Field(default_factory=list)
    release_round: int = 0
    reserve_round: int = 0
    reserve_pending: bool = False
    shipments: list[str] = Field(default_factory=list)
    invoices: list[dict[str, Any]] = Field(default_factory=list)
    invoice_total: dict[str, Any] | None = None
    final_invoice_seen: bool = False
    version: int = 0
    updated_at: datetime | None = None

    def line(self, line_id: str) -> Line | None:
        """The line with this id, or None."""
        return next((line for line in self.lines if line.line_id == line_id), None)

    @property
    def active_holds(self) -> list[Hold]:
        """Holds not yet released."""
        return [h for h in self.holds if h.released_at is None]

    @property
    def open_lines(self) -> list[Line]:
        """Lines with quantity not cancelled."""
        return [line for line in self.lines if line.open_quantity > 0]

    @property
    def waiting_skus(self) -> list[str]:
        """SKUs of lines waiting for stock."""
        return sorted({line.sku for line in self.lines if line.short > 0})

    @property
    def locations(self) -> list[str]:
        """Locations holding or shipping any of the order's lines."""
        return sorted({loc for line in self.lines for loc in (*line.allocations, *line.released)})
