"""SQLAlchemy tables of the inventory service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

TS = UTCDateTime()


class PositionRow(Base):
    """One SKU at one location (I1); `version` increments with every change."""

    __tablename__ = "inventory_position"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    committed: Mapped[int] = mapped_column(Integer, default=0)
    incoming: Mapped[int] = mapped_column(Integer, default=0)
    damaged: Mapped[int] = mapped_column(Integer, default=0)
    quality_control: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(TS)
    last_snapshot_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class ReservationRow(Base):
    """Stock held for one order line at one location (I2); the key makes a line reserve once."""

    __tablename__ = "inventory_reservation"
    __table_args__ = (Index("ix_inventory_reservation_order_id", "order_id"),)

    reservation_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    shipped: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    release_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class RequestRow(Base):
    """The first response to a mutating request, replayed for a repeated request_id."""

    __tablename__ = "inventory_request"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS)


class ShipmentLineRow(Base):
    """A shipped line already consumed, so a re-published shipment consumes once."""

    __tablename__ = "inventory_shipment_line"

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TS)


class SnapshotRow(Base):
    """The last snapshot applied per location; older snapshots are ignored."""

    __tablename__ = "inventory_snapshot"

    location_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(TS)
    request_id: Mapped[str] = mapped_column(String(128))
    applied_at: Mapped[datetime] = mapped_column(TS)


class MovementRow(Base):
    """A physical on_hand movement (shipment, receipt) with the time it happened, so a count can be
    compared with what the mesh believed at the count's as_of (I5)."""

    __tablename__ = "inventory_movement"
    __table_args__ = (Index("ix_inventory_movement_position", "sku", "location_id", "occurred_at"),)

    movement_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(200))
    reported: Mapped[int] = mapped_column(Integer)
    applied: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(TS)
    recorded_at: Mapped[datetime] = mapped_column(TS)


class DriftRow(Base):
    """One bucket of one position found to differ from a snapshot, with its evidence and outcome."""

    __tablename__ = "inventory_drift"
    __table_args__ = (Index("ix_inventory_drift_position", "sku", "location_id", "detected_at"),)

    drift_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[str] = mapped_column(String(32))
    source_system: Mapped[str] = mapped_column(String(16))
    snapshot_id: Mapped[str] = mapped_column(String(128))
    as_of: Mapped[datetime] = mapped_column(TS)
    mesh: Mapped[int] = mapped_column(Integer)
    in_flight: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int] = mapped_column(Integer)
    observed: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer)
    committed: Mapped[int] = mapped_column(Integer)
    allocated: Mapped[int] = mapped_column(Integer)
    bound: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    result: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str] = mapped_column(String(4000))
    event_id: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(TS)


class InboundLineRow(Base):
    """One line of an ERP inbound document (purchase or transfer order) as last read (I5).

    `counted` is what the line adds to its position's incoming now; a change of the line moves
    incoming by the difference, so manual EXPECTED_INBOUND adjustments stay additive.
    """

    __tablename__ = "inventory_inbound_line"
    __table_args__ = (
        Index("ix_inventory_inbound_document", "document_number", "sku", "location_id"),
        Index("ix_inventory_inbound_document_id", "document_id"),
    )

    line_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_system: Mapped[str] = mapped_column(String(16))
    document_id: Mapped[str] = mapped_column(String(128))
    document_number: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer)
    closed: Mapped[bool] = mapped_column(Boolean)
    counted: Mapped[int] = mapped_column(Integer)
    expected_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TS)


class ReceiptLineRow(Base):
    """A receipt line applied (3PL receiving order, EDI 944, return), so it applies once."""

    __tablename__ = "inventory_receipt_line"
    __table_args__ = (Index("ix_inventory_receipt_document", "document_number", "sku", "location_id"),)

    receipt_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_system: Mapped[str] = mapped_column(String(16))
    document_number: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    damaged: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(TS)
    recorded_at: Mapped[datetime] = mapped_column(TS)
