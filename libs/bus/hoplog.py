"""The per-hop transaction log (V2): outcome, attempt, latency and a redacted payload snapshot per hop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.tables import HopRow
from libs.store import Compiled, Database
from libs.telemetry.redaction import redact, redact_message

OK = "ok"
DUPLICATE = "duplicate"
RETRY = "retry"
DEAD_LETTER = "dead_letter"
ERROR = "error"
OUTCOMES = frozenset({OK, DUPLICATE, RETRY, DEAD_LETTER, ERROR})

_DETAIL_MAX = 2000


# Built once, on the table, and run as a compiled statement (libs.store.Compiled).
_INSERT = Compiled(insert(HopRow.__table__))


def snapshot(payload: Message | dict[str, Any] | None) -> Any:
    """A JSON-ready copy of `payload` with personal data and secrets masked (S4)."""
    if payload is None:
        return None
    if isinstance(payload, Message):
        return redact_message(payload)
    return redact(payload)


def hop_values(
    *,
    hop: str,
    outcome: str,
    correlation_id: str | None = None,
    event_id: str | None = None,
    attempt: int = 1,
    latency_ms: float = 0.0,
    detail: str | None = None,
    payload: Message | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one hop_log row."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown hop outcome {outcome!r}")
    return {
        "hop": hop,
        "outcome": outcome,
        "correlation_id": correlation_id,
        "event_id": event_id,
        "attempt": attempt,
        "latency_ms": round(latency_ms, 3),
        "detail": detail[:_DETAIL_MAX] if detail else None,
        "payload_snapshot": snapshot(payload),
        "created_at": datetime.now(UTC),
    }


async def record_hop(
    session: AsyncSession,
    *,
    hop: str,
    outcome: str,
    correlation_id: str | None = None,
    event_id: str | None = None,
    attempt: int = 1,
    latency_ms: float = 0.0,
    detail: str | None = None,
    payload: Message | dict[str, Any] | None = None,
) -> None:
    """Add a hop_log row in the caller's transaction.

    Adapters call it around each external call (`erp-adapter.create-sales-order`); the consumer
    calls it for every delivery it handles.

    Args:
        session: the caller's write session; the row commits with the caller's effects.
        hop: who did what, e.g. `orders:erp-adapter.create-sales-order` or a consumer name.
        outcome: one of ok, duplicate, retry, dead_letter, error.
        correlation_id: the business flow (one order is one correlation id).
        event_id: the event or request id handled.
        attempt: 1 for the first try, the delivery count for redeliveries.
        latency_ms: how long the hop took.
        detail: one line for people (a failure reason, an external document number); no PII.
        payload: the message or request body; redacted before it is stored.
    """
    values = hop_values(
        hop=hop,
        outcome=outcome,
        correlation_id=correlation_id,
        event_id=event_id,
        attempt=attempt,
        latency_ms=latency_ms,
        detail=detail,
        payload=payload,
    )
    await session.execute(_INSERT, values)


class HopLog:
    """Reads and retention of the hop log.

    Args:
        db: the service database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def for_correlation(self, correlation_id: str) -> list[HopRow]:
        """Every hop of one business flow, oldest first (an order's timeline)."""
        async with self.db.read() as session:
            query = select(HopRow).where(HopRow.correlation_id == correlation_id).order_by(HopRow.id)
            return list((await session.execute(query)).scalars())

    async def purge(self, older_than: timedelta) -> int:
        """Delete hops older than `older_than` (S4 retention); returns how many."""
        cutoff = datetime.now(UTC) - older_than
        return await self.db.delete_in_batches(HopRow, HopRow.created_at < cutoff)
