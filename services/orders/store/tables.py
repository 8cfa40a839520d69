"""SQLAlchemy models of the orders tables; written only inside order actor turns and event handlers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

TS = UTCDateTime()


class OrderSummary(Base):
    """Queryable read model of every order (ListOrders, GetOrder), saved in the actor's turn."""

    __tablename__ = "order_summary"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    channel_order_id: Mapped[str] = mapped_column(String(255), index=True)
    placed_at: Mapped[datetime | None] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    hold_reasons: Mapped[str] = mapped_column(String(255), default="")
    locations: Mapped[str] = mapped_column(String(255), default="")
    version: Mapped[int] = mapped_column(BigInteger)
    snapshot_json: Mapped[str] = mapped_column(Text)


class OrderRequest(Base):
    """The first reply to each mutating request_id: a repeat returns it (idempotent commands)."""

    __tablename__ = "order_request"

    request_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    rpc: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(64))
    reply_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS)


class OrderException(Base):
    """An order exception for an operations worklist: reason code, owner and time (V3)."""

    __tablename__ = "order_exception"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS)


class OrderInbound(Base):
    """A consumed fact waiting for its order actor (durable hand-off from the event consumer)."""

    __tablename__ = "order_inbound"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS)


class OrderBackorder(Base):
    """Which backordered order waits for which SKU (to re-reserve on AvailabilityChanged)."""

    __tablename__ = "order_backorder"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
