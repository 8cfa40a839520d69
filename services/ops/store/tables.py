"""SQLAlchemy models of the ops tables; written by the worklist's event handlers and RPCs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

TS = UTCDateTime()


class ExceptionRow(Base):
    """One business exception (V3). At most one not resolved per (kind, subject): a partial unique
    index decides, so two replicas finding the same cause at once cannot open two."""

    __tablename__ = "ops_exception"
    __table_args__ = (
        Index(
            "uq_ops_exception_open_cause",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("state != 'RESOLVED'"),
            postgresql_where=text("state != 'RESOLVED'"),
        ),
        Index("ix_ops_exception_state_opened", "state", "opened_at", "exception_id"),
    )

    exception_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    worklist: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(64))
    reason_message: Mapped[str] = mapped_column(Text)
    source_system: Mapped[str] = mapped_column(String(16))
    external_code: Mapped[str] = mapped_column(String(255))
    evidence: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(160))
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    correlation_id: Mapped[str] = mapped_column(String(64))
    source_event_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str] = mapped_column(String(128))
    occurrences: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS)
    resolution: Mapped[str] = mapped_column(String(32))
    resolution_note: Mapped[str] = mapped_column(Text)
    resolved_by: Mapped[str] = mapped_column(String(128))


class ClearanceRow(Base):
    """When a cause was last cleared by an event, so a late redelivery of the event that raised it
    (older than the clearance) opens nothing."""

    __tablename__ = "ops_clearance"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    cleared_at: Mapped[datetime] = mapped_column(TS)
    event_id: Mapped[str] = mapped_column(String(64))


class RequestRow(Base):
    """The first reply to each mutating request_id: a repeat returns it (idempotent commands)."""

    __tablename__ = "ops_request"

    request_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    rpc: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS)
