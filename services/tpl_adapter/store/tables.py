"""What the tpl-adapter remembers: releases sent to the 3PL, EDI control numbers, webhook
subscriptions and deliveries (a webhook inbox), EDI files read, reconciliation runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    insert,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, Compiled, UTCDateTime

TS = UTCDateTime()


class ReleaseRow(Base):
    """One warehouse release: the 3PL order made for it and where it stands."""

    __tablename__ = "tpl_release"

    release_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    location_id: Mapped[str] = mapped_column(String(64))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    mode: Mapped[str] = mapped_column(String(8))
    #: sent, accepted, rejected, cancel_requested, cancelled, cancel_rejected
    status: Mapped[str] = mapped_column(String(24))
    warehouse_order_id: Mapped[str | None] = mapped_column(String(64))
    edi_control: Mapped[int | None] = mapped_column(BigInteger, index=True)
    cancel_control: Mapped[int | None] = mapped_column(BigInteger, index=True)
    cancel_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    shipped: Mapped[bool] = mapped_column(Boolean)
    #: The order flow's correlation id and trace context (libs.telemetry.capture_flow): shipment
    #: reports that arrive later continue the order's trace.
    flow: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class EdiCounterRow(Base):
    """A monotonically increasing EDI control number (ISA13 = GS06 of everything we write)."""

    __tablename__ = "tpl_edi_counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


_COUNTER = EdiCounterRow.__table__
# Built once and run as compiled statements (libs.store.Compiled): every 940 and 997 takes a number.
_NEXT_CONTROL = Compiled(
    update(_COUNTER)
    .where(_COUNTER.c.name == bindparam("b_name"))
    .values(value=_COUNTER.c.value % 999_999_999 + 1)
    .returning(_COUNTER.c.value)
)
_FIRST_CONTROL = Compiled(insert(_COUNTER))


async def next_control_number(session: AsyncSession, name: str = "interchange") -> int:
    """The next control number, in the caller's transaction (one atomic UPDATE ... RETURNING)."""
    value = (await session.execute(_NEXT_CONTROL, {"b_name": name})).scalar_one_or_none()
    if value is None:
        await session.execute(_FIRST_CONTROL, {"name": name, "value": 1})
        return 1
    return value


class WebhookSubscriptionRow(Base):
    """A subscription we registered at the 3PL, with the secret its deliveries are signed with."""

    __tablename__ = "tpl_webhook_subscription"

    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024))
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TS)


class WebhookDeliveryRow(Base):
    """A verified webhook delivery, stored before it is answered 2xx; the key deduplicates."""

    __tablename__ = "tpl_webhook_delivery"

    delivery_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    #: pending, done, failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TS)
    next_attempt_at: Mapped[datetime] = mapped_column(TS)
    processed_at: Mapped[datetime | None] = mapped_column(TS)


class EdiFileRow(Base):
    """An outbound EDI file read from the 3PL (so a file seen again is not applied twice)."""

    __tablename__ = "tpl_edi_file"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    set_code: Mapped[str] = mapped_column(String(8))
    interchange_control: Mapped[str] = mapped_column(String(16))
    #: done, failed
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TS)


class ReconciliationRunRow(Base):
    """A RunReconciliation answered, by request id."""

    __tablename__ = "tpl_reconciliation_run"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS)
