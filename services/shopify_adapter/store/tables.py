"""The shopify-adapter's tables: stored webhook deliveries, channel orders, fulfillment jobs, watermarks,
inventory pushes and the SKU → inventory item map."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

# Delivery and job states. A row is written `pending` (or `rejected`) and changes once it is worked.
PENDING = "pending"
PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"
REJECTED = "rejected"
DONE = "done"


class WebhookDelivery(Base):
    """One webhook as received: raw body and headers, stored before the 200 (O1).

    `event_id` (`X-Shopify-Event-Id`) is unique: the constraint, not a look-up, decides that a
    delivery is a duplicate. Signature-checked but unparseable bodies are kept as `rejected`.
    """

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    webhook_id: Mapped[str | None] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(128))
    shop_domain: Mapped[str] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(32))
    triggered_at: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    order_gid: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),)


class ChannelOrder(Base):
    """A Shopify order the mesh ingested: its GID and the mesh's order id (for outbound calls)."""

    __tablename__ = "channel_order"

    order_gid: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(64))
    #: The newest version seen: ingested, or skipped as an echo of the one ingested (`sync.ingest`).
    channel_updated_at: Mapped[str | None] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: SHA-256 of the version last ingested, its `channel_updated_at` left out.
    content_digest: Mapped[str | None] = mapped_column(String(64))
    #: The newest version the orders service was given.
    ingested_updated_at: Mapped[str | None] = mapped_column(String(64))


class FulfillmentJob(Base):
    """A confirmed shipment to turn into one Shopify fulfillment with tracking (O6).

    Written by the ShipmentConfirmed consumer (fast, inside its inbox transaction); worked outside
    any transaction by the fulfillment worker, so Admin API calls never hold the database.
    """

    __tablename__ = "fulfillment_job"

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    notice: Mapped[bytes] = mapped_column(LargeBinary)
    correlation_id: Mapped[str] = mapped_column(String(128))
    causation_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    fulfillment_gid: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_fulfillment_job_status_next_attempt_at", "status", "next_attempt_at"),)


class Watermark(Base):
    """How far a reconciliation poll got: Shopify `updatedAt` and the last order id at that time."""

    __tablename__ = "reconcile_watermark"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated_at: Mapped[str] = mapped_column(String(64))
    last_id: Mapped[str] = mapped_column(String(255))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReconciliationRunRow(Base):
    """A RunReconciliation result, kept by request_id so a repeated request returns the first run."""

    __tablename__ = "reconciliation_run"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InventoryPush(Base):
    """What Shopify should show for one SKU at one mesh location, and what it was last told (I4).

    The AvailabilityChanged consumer writes only the wanted side (`wanted_*`, keeping the highest
    position version) inside its inbox transaction; the inventory pusher reads due rows, calls
    Shopify outside any transaction and records the pushed side. A row is due while
    `pushed_version < wanted_version`, so rapid changes to one item collapse into one push of the
    latest figure and nothing is lost: a failed push leaves the row due.

    `shopify_available` is the last `available` Shopify was seen to hold (after our write or a
    read); it is the next `changeFromQuantity`, and None means "read it first". `item_gid`,
    `location_gid` and `pushed_quantity` identify our own writes when Shopify reports them back.

    `held_quantity` is set when verification found Shopify far below the mesh and the inventory
    service held Shopify's figure (I5, docs/decisions/0021): Shopify is then sent at most that
    figure until the mesh's own figure falls to it or Shopify shows the mesh's figure again.

    `base_quantity` is the mesh's figure the last write (or agreement) brought Shopify in line
    with. A push raises Shopify by at most the mesh's own rise since then, so a sale Shopify took
    that the mesh has not reserved yet is never undone (docs/decisions/0025). `lower_quantity` and
    `lower_since` remember a lower Shopify figure seen by verification, which is repaired only once
    it has stood unchanged for `inventory_lower_grace_s` (no sale in flight explains it then).
    """

    __tablename__ = "inventory_push"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wanted_quantity: Mapped[int] = mapped_column(Integer)
    wanted_version: Mapped[int] = mapped_column(BigInteger)
    wanted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    correlation_id: Mapped[str] = mapped_column(String(128))
    pushed_quantity: Mapped[int | None] = mapped_column(Integer)
    pushed_version: Mapped[int] = mapped_column(BigInteger, default=0)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shopify_available: Mapped[int | None] = mapped_column(Integer)
    item_gid: Mapped[str | None] = mapped_column(String(255))
    location_gid: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_quantity: Mapped[int | None] = mapped_column(Integer)
    base_quantity: Mapped[int | None] = mapped_column(Integer)
    lower_quantity: Mapped[int | None] = mapped_column(Integer)
    lower_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_inventory_push_next_attempt_at", "next_attempt_at"),
        Index("ix_inventory_push_item_location", "item_gid", "location_gid"),
    )


class InventoryMove(Base):
    """Units of a SKU Shopify now holds committed at one location because the adapter moved a
    fulfillment order there (`quantity` > 0), or no longer holds there (< 0): written by the
    routing consumer in its inbox transaction, applied to `inventory_push` by the inventory pusher
    before its next round, then deleted (`sync.routing`, decision 0042)."""

    __tablename__ = "inventory_move"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InventoryItemMap(Base):
    """A SKU's Shopify inventory item, looked up once by SKU and kept (cleared when Shopify says the
    item is invalid)."""

    __tablename__ = "shopify_inventory_item"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_gid: Mapped[str] = mapped_column(String(255))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())
