"""Dead letters (M3, M4): messages a consumer gave up on, listed and replayed after a fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext, api
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.envelope import EVENT_ID, EVENT_TYPE, MSG_ID, REPLAY_FOR, new_event_id
from libs.bus.publish import publish_batch
from libs.bus.tables import DeadLetterRow
from libs.store import Database


async def add_dead_letter(
    session: AsyncSession,
    *,
    consumer: str,
    stream: str,
    stream_seq: int,
    subject: str,
    payload: bytes,
    headers: Mapping[str, str],
    reason: str,
    deliveries: int,
    event_id: str | None = None,
) -> bool:
    """Insert a dead letter unless this consumer already dead-lettered this stream message.

    The consumer's own give-up and the MAX_DELIVERIES advisory can both report one message;
    the unique (consumer, stream, stream_seq) keeps one row.

    Returns:
        Whether a row was inserted.
    """
    values = {
        "consumer": consumer,
        "stream": stream,
        "stream_seq": stream_seq,
        "subject": subject,
        "event_id": event_id or headers.get(EVENT_ID) or headers.get(MSG_ID),
        "event_type": headers.get(EVENT_TYPE),
        "payload": payload,
        "headers": dict(headers),
        "reason": reason[:4000],
        "deliveries": deliveries,
        "created_at": datetime.now(UTC),
        "replay_count": 0,
    }
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(DeadLetterRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["consumer", "stream", "stream_seq"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)


@dataclass
class ReplayResult:
    """What a replay did: ids re-published, and ids whose publish failed with the error."""

    replayed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


class DeadLetters:
    """Inspect and replay dead letters (the ops console's dead-letter page calls these).

    Args:
        db: the service database holding `dead_letter`.
        js: a JetStream context, for replays.
    """

    def __init__(self, db: Database, js: JetStreamContext | None = None) -> None:
        self.db = db
        self.js = js

    async def list(
        self,
        *,
        consumer: str | None = None,
        include_replayed: bool = False,
        reason_contains: str | None = None,
        limit: int = 100,
    ) -> list[DeadLetterRow]:
        """Dead letters, newest first.

        Args:
            consumer: only this consumer's.
            include_replayed: also rows already replayed.
            reason_contains: only rows whose reason contains this text.
            limit: at most this many rows.
        """
        query = select(DeadLetterRow).order_by(DeadLetterRow.id.desc()).limit(limit)
        query = self._filter(
            query, consumer=consumer, include_replayed=include_replayed, reason_contains=reason_contains
        )
        async with self.db.read() as session:
            return list((await session.execute(query)).scalars())

    async def replay(
        self,
        ids: Sequence[int] | None = None,
        *,
        consumer: str | None = None,
        reason_contains: str | None = None,
        include_replayed: bool = False,
        limit: int = 1000,
        publish_timeout: float = 5.0,
    ) -> ReplayResult:
        """Publish dead letters again, one or in bulk, after their cause was fixed.

        Each copy keeps the original payload and headers (event id, correlation, trace) and gets
        a new `Nats-Msg-Id` (`<event_id>:replay:<uuid>`) so the server's duplicate window does
        not swallow it, plus `Retail-Replay-For: <consumer>` so only the consumer that gave up
        handles it. That consumer never committed the event (dead-lettering rolls its effects
        back, so its inbox has no row) and applies it once; a consumer that did commit it
        meanwhile sees a duplicate in its inbox.

        Args:
            ids: dead-letter ids; None selects by the filters instead.
            consumer: with ids=None, every unreplayed dead letter of this consumer.
            reason_contains: with ids=None, only rows whose reason contains this text.
            include_replayed: also replay rows that were replayed before.
            limit: at most this many rows per call.
            publish_timeout: seconds to wait for the PubAcks.
        """
        if self.js is None:
            raise RuntimeError("DeadLetters needs a JetStream context to replay")
        if ids is None and consumer is None and reason_contains is None:
            raise ValueError("replay needs ids or a filter (consumer, reason_contains)")
        query = select(DeadLetterRow).order_by(DeadLetterRow.id).limit(limit)
        if ids is not None:
            query = query.where(DeadLetterRow.id.in_(list(ids)))
            include_replayed = True  # an explicit id is replayed on request, whatever its past
        query = self._filter(
            query, consumer=consumer, include_replayed=include_replayed, reason_contains=reason_contains
        )
        async with self.db.read() as session:
            rows = list((await session.execute(query)).scalars())
        result = ReplayResult()
        if not rows:
            return result
        messages = []
        for row in rows:
            event_id = row.event_id or f"{row.stream}:{row.stream_seq}"
            headers = {
                **row.headers,
                EVENT_ID: event_id,
                MSG_ID: f"{event_id}:replay:{new_event_id()}",
                REPLAY_FOR: row.consumer,
            }
            messages.append((row.subject, row.payload, headers))
        acks = await publish_batch(self.js, messages, ack_timeout=publish_timeout)
        now = datetime.now(UTC)
        done = []
        for row, ack in zip(rows, acks, strict=True):
            if isinstance(ack, api.PubAck):
                result.replayed.append(row.id)
                done.append({"id": row.id, "replayed_at": now, "replay_count": row.replay_count + 1})
            else:
                result.failed[row.id] = f"{ack.__class__.__name__}: {ack}"
        if done:
            async with self.db.transaction() as session:
                await session.execute(update(DeadLetterRow), done)
        return result

    @staticmethod
    def _filter(
        query: Any, *, consumer: str | None, include_replayed: bool, reason_contains: str | None
    ) -> Any:
        if consumer is not None:
            query = query.where(DeadLetterRow.consumer == consumer)
        if not include_replayed:
            query = query.where(DeadLetterRow.replayed_at.is_(None))
        if reason_contains:
            query = query.where(DeadLetterRow.reason.contains(reason_contains, autoescape=True))
        return query
