"""The idempotent-consumer inbox (M1): a primary key on (consumer, event_id) decides "duplicate"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.tables import InboxRow
from libs.store import Compiled, Database

# Built once, on the table, and run as compiled statements (libs.store.Compiled).
_CLAIM = Compiled(insert(InboxRow.__table__))
_INBOX = InboxRow.__table__
_SEEN = Compiled(
    select(_INBOX.c.event_id).where(
        _INBOX.c.consumer == bindparam("b_consumer"), _INBOX.c.event_id == bindparam("b_event_id")
    )
)


class DuplicateEvent(Exception):
    """The consumer already committed this event; the caller rolls back and acks."""


async def claim(session: AsyncSession, consumer: str, event_id: str) -> None:
    """Insert the inbox row for (consumer, event_id) in the handler's transaction.

    Never check-then-insert: the insert itself is the check, so two deliveries racing on two
    replicas cannot both pass (on PostgreSQL the second insert waits for the first transaction
    and fails if it commits).

    Raises:
        DuplicateEvent: the row exists; the transaction must be rolled back.
    """
    try:
        await session.execute(
            _CLAIM, {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}
        )
    except IntegrityError:
        raise DuplicateEvent(f"{consumer} already handled {event_id}") from None


class Inbox:
    """Reads and retention of the inbox.

    Args:
        db: the service database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def seen(self, consumer: str, event_id: str) -> bool:
        """Whether `consumer` has committed the handling of `event_id`."""
        found = await self.db.fetch(_SEEN, {"b_consumer": consumer, "b_event_id": event_id})
        return found.first() is not None

    async def purge(self, older_than: timedelta) -> int:
        """Forget events handled before `older_than` ago; returns how many rows were deleted.

        Keep this longer than every producer's outbox replay horizon plus the dead-letter
        replay window, or a late replay would be applied twice.
        """
        cutoff = datetime.now(UTC) - older_than
        return await self.db.delete_in_batches(InboxRow, InboxRow.processed_at < cutoff)
