"""The bus's tables: outbox, inbox, dead_letter and hop_log (created by libs/bus/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime

# Outbox row states (eShop's IntegrationEventLog: NotPublished, InProgress, Published, PublishedFailed).
PENDING = "pending"
IN_FLIGHT = "in_flight"
PUBLISHED = "published"
FAILED = "failed"


class OutboxRow(Base):
    """An event written in the producer's transaction, published after commit by the relay.

    `available_at` is when the row may next be claimed: its creation for a new row, the lease
    expiry while `in_flight`, the back-off deadline after a failed publish.
    """

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(160))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stream: Mapped[str | None] = mapped_column(String(64))
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_outbox_status_available_at", "status", "available_at"),
        Index("ix_outbox_created_at", "created_at"),
    )


class InboxRow(Base):
    """One event handled by one consumer; the primary key is what decides "duplicate"."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class DeadLetterRow(Base):
    """A message a consumer gave up on, kept with its original bytes and headers for replay."""

    __tablename__ = "dead_letter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(128))
    stream: Mapped[str] = mapped_column(String(64))
    stream_seq: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(128))
    event_type: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replay_count: Mapped[int] = mapped_column(Integer, default=0)

    # One row per stream message and consumer: the consumer's own dead-lettering and the
    # MAX_DELIVERIES advisory may both report the same message.
    __table_args__ = (UniqueConstraint("consumer", "stream", "stream_seq", name="uq_dead_letter_message"),)


class HopRow(Base):
    """One handled delivery or external call of one business flow (V2)."""

    __tablename__ = "hop_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    correlation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    event_id: Mapped[str | None] = mapped_column(String(128))
    hop: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    latency_ms: Mapped[float] = mapped_column()
    detail: Mapped[str | None] = mapped_column(Text)
    payload_snapshot: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
