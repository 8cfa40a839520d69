"""The actor runtime's tables: one state row per actor and its durable reminders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime


class ActorStateRow(Base):
    """The stored state of one actor; `version` drives optimistic concurrency between replicas."""

    __tablename__ = "actor_state"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state_json: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ActorReminderRow(Base):
    """A durable reminder: fires `name` at `due_at` for one actor until a turn handling it commits.

    `token` changes every time the reminder is set, so a firing that was claimed before the
    reminder was cancelled or re-set is recognised as stale. `claimed_until` is the lease a
    poller takes so that one replica delivers it; when it lapses (crash, failed turn) it re-fires.
    """

    __tablename__ = "actor_reminder"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    payload_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_actor_reminder_due_at", "due_at"),)


STATE = ActorStateRow.__table__
REMINDER = ActorReminderRow.__table__
