"""What the erp-adapter remembers: order id ↔ BC sales order, and every shipment it posted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

#: Values of ErpSalesOrderRow.status.
CREATED = "created"
CANCELLED = "cancelled"
#: Line cancellations arrived before the sales order was created; applied right after creating it.
AWAITING_CREATE = "awaiting_create"
#: Outcomes of an address correction in ErpSalesOrderRow.ship_to.
PENDING = "pending"
APPLIED = "applied"
REFUSED = "refused"


class ErpSalesOrderRow(Base):
    """One mesh order's sales order in Business Central.

    `status` is `created`, or `cancelled` once an OrderCancelled was handled; a cancelled row
    without a BC id is a tombstone that stops a late OrderAccepted from creating the order.
    `awaiting_create` holds line cancellations that overtook the creation (an OrderAccepted being
    retried): `lines` then maps line id → `{"cancelled": quantity}` until the order is created.
    `lines` maps each canonical line id to its BC line (`sequence`, `bc_line_id`, `sku`,
    `quantity` as ordered, `cancelled` so far).
    `ship_to` is the latest address correction (O7): `at` (when the mesh corrected it) and
    `outcome` (`pending` until BC has it, `applied`, or `refused` with BC's `code` and `message`);
    the address fields themselves (`fields`, PII) are kept only while pending.
    """

    __tablename__ = "erp_sales_order"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_document_number: Mapped[str] = mapped_column(String(35), index=True)
    bc_id: Mapped[str | None] = mapped_column(String(64))
    bc_number: Mapped[str | None] = mapped_column(String(32))
    bc_etag: Mapped[str | None] = mapped_column(String(255))
    customer_number: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    lines: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ship_to: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ErpShipmentPostingRow(Base):
    """A shipment posted in BC (shipAndInvoice): the shipment id is the key, so it posts once."""

    __tablename__ = "erp_shipment_posting"
    __table_args__ = (
        Index("uq_erp_shipment_posting_bc_shipment_id", "bc_shipment_id", unique=True),
        Index("uq_erp_shipment_posting_bc_invoice_id", "bc_invoice_id", unique=True),
    )

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    # Unique (migration 0003): one BC posting belongs to one shipment of ours at most.
    bc_shipment_id: Mapped[str] = mapped_column(String(64))
    bc_shipment_number: Mapped[str] = mapped_column(String(32))
    bc_invoice_id: Mapped[str | None] = mapped_column(String(64))
    bc_invoice_number: Mapped[str | None] = mapped_column(String(32))
    final: Mapped[bool] = mapped_column(Boolean)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
