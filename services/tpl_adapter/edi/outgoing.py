"""Writing our interchanges (940, 997) with persisted, monotonically increasing control numbers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.x12 import TransactionSet, envelope, write
from services.tpl_adapter.clients.mailbox import EdiMailbox
from services.tpl_adapter.store import next_control_number


async def send(
    session: AsyncSession,
    mailbox: EdiMailbox,
    transactions: list[TransactionSet],
    *,
    sender_id: str,
    receiver_id: str,
) -> int:
    """Envelope `transactions` under the next control number and drop the file into `inbound/`.

    The control number is taken in the caller's transaction; the file is written before it
    commits, so a rollback can leave a file whose number is reused by the next interchange; the
    partner deduplicates 940s by W05-02 (the release id), so the repeat creates nothing. The write
    and its fsync run in a worker thread: a slow disk (a mounted drop folder) delays this
    transaction, never the event loop.

    Returns:
        The interchange control number (ISA13 = GS06).
    """
    control = await next_control_number(session)
    stamp = datetime.now(UTC)
    interchange = envelope(
        transactions,
        sender_id=sender_id,
        receiver_id=receiver_id,
        control_number=control,
        date=stamp.strftime("%Y%m%d"),
        time=stamp.strftime("%H%M"),
    )
    await asyncio.to_thread(mailbox.put, transactions[0].code, control, write([interchange]))
    return control
