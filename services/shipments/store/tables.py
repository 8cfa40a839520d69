"""Shipment notices as stored: one row per warehouse shipment, one row per request id seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime


class ShipmentRow(Base):
    """One shipment notice (the canonical ShipmentNotice serialized in `notice`).

    `(warehouse_system, warehouse_shipment_id)` is unique, so the same warehouse shipment reported
    twice (webhook and 945, or a redelivered webhook with another id) is recorded once.
    """

    __tablename__ = "shipment"
    __table_args__ = (UniqueConstraint("warehouse_system", "warehouse_shipment_id"),)

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    release_id: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    warehouse_system: Mapped[int] = mapped_column()
    warehouse_shipment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column()
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    tracking_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_packages: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(BigInteger)
    notice: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShipmentRequestRow(Base):
    """A mutating request already answered: `request_id` → the shipment it concerned."""

    __tablename__ = "shipment_request"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    shipment_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
