"""Transactional outbox (M1): events commit with the state change, a relay publishes them after commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from nats.js import JetStreamContext, api
from nats.js.errors import APIError
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus.envelope import (
    InvalidEvent,
    meta_value,
    new_event_id,
    publish_headers,
    stamp_meta,
    validation_error,
)
from libs.bus.publish import publish_batch
from libs.bus.streams import subject_for
from libs.bus.tables import FAILED, IN_FLIGHT, PENDING, PUBLISHED, OutboxRow
from libs.store import Compiled, Database, after_commit
from libs.telemetry.correlation import correlation_id as current_correlation_id

log = logging.getLogger(__name__)

# JetStream error codes that no retry can fix: the message is larger than the stream accepts.
_PERMANENT_PUBLISH_ERRORS = frozenset({10054})


# A Core statement on the table, built once: an ORM `session.add` (a unit-of-work flush) costs several
# times the INSERT itself, and every event of the mesh passes here.
_INSERT = Compiled(insert(OutboxRow.__table__))
# The relay's statements, built once too: every relay pass of every service runs them.
_OUTBOX = OutboxRow.__table__
_DUE = (
    select(_OUTBOX.c.id, _OUTBOX.c.subject, _OUTBOX.c.payload, _OUTBOX.c.headers, _OUTBOX.c.attempts)
    .where(
        _OUTBOX.c.status.in_([PENDING, IN_FLIGHT]),  # expanded once, at compile time (libs.store.Compiled)
        _OUTBOX.c.available_at <= bindparam("b_now", type_=_OUTBOX.c.available_at.type),
    )
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("b_limit"))
)
# SQLite: read without a session (`Database.fetch`); rows this process has leased are left out
# (see `OutboxRelay.claim`), in Python while they are few: an expanding NOT IN is SQLAlchemy's to run.
_DUE_READ = Compiled(_DUE)
_DUE_UNHELD = Compiled(_DUE.where(_OUTBOX.c.id.not_in(bindparam("b_held", expanding=True))))
# PostgreSQL: rows another replica is claiming right now are skipped, not waited for.
_DUE_UNLOCKED = _DUE.with_for_update(skip_locked=True)
_LEASE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(status=IN_FLIGHT, available_at=bindparam("b_until", type_=_OUTBOX.c.available_at.type))
)
_ROW = _OUTBOX.c.id == bindparam("b_id")
_PUBLISHED = Compiled(update(_OUTBOX).where(_ROW).values(status=PUBLISHED, last_error=None))
_RETRY = Compiled(update(_OUTBOX).where(_ROW))


class Outbox:
    """Writes events into the caller's transaction.

    Args:
        producer: this service's name (`orders`), stamped into `meta.producer` when unset.
        validate: refuse events that break their protovalidate rules before they are stored, so
            a bad event fails the producer's transaction instead of poisoning every consumer.
    """

    def __init__(self, *, producer: str | None = None, validate: bool = True) -> None:
        self.producer = producer
        self.validate = validate
        self._listeners: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each commit that wrote outbox rows (the relay's `notify`)."""
        self._listeners.append(callback)

    async def add(
        self,
        session: AsyncSession,
        event: Message,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        key: str | None = None,
    ) -> str:
        """Stage `event` for publication in the caller's transaction.

        The row is inserted at once, in the caller's transaction: the event exists exactly when
        the state change that caused it commits.

        Args:
            session: the caller's write session (`async with db.transaction() as session`).
            event: a protobuf event; its `meta` is stamped where unset.
            correlation_id: the flow's id; defaults to `meta.correlation_id`, then the current
                correlation id (libs.telemetry), then the new event's own id (a new flow).
            causation_id: id of the message that caused this event (`ctx.event_id` in a handler).
            key: the business key of the actor the event concerns (`meta.key`).

        Returns:
            The event id: `meta.event_id` if the producer set one, else a new time-ordered id.

        Raises:
            InvalidEvent: the event breaks its protovalidate rules.
        """
        event_id = meta_value(event, "event_id") or new_event_id()
        correlation = (
            correlation_id or meta_value(event, "correlation_id") or current_correlation_id.get() or event_id
        )
        causation = causation_id or meta_value(event, "causation_id") or None
        key = key or meta_value(event, "key") or None
        stamp_meta(
            event,
            event_id=event_id,
            correlation_id=correlation,
            causation_id=causation,
            key=key,
            producer=self.producer,
        )
        if self.validate:
            problem = validation_error(event)
            if problem:
                raise InvalidEvent(f"{event.DESCRIPTOR.full_name}: {problem}")
        event_type = event.DESCRIPTOR.full_name
        now = datetime.now(UTC)
        await session.execute(
            _INSERT,
            {
                "id": event_id,
                "subject": subject_for(event),
                "event_type": event_type,
                "key": key,
                "payload": event.SerializeToString(),
                "headers": publish_headers(event_type, event_id, correlation, causation),
                "status": PENDING,
                "attempts": 0,
                "created_at": now,
                "available_at": now,
            },
        )
        self._hook(session)
        return event_id

    def _hook(self, session: AsyncSession) -> None:
        if self._listeners:
            after_commit(session, self._committed)

    def _committed(self) -> None:
        for callback in self._listeners:
            callback()


@dataclass(frozen=True)
class Claimed:
    """An outbox row claimed by one relay for one publish attempt."""

    id: str
    subject: str
    payload: bytes
    headers: dict[str, str]
    attempts: int


class OutboxRelay:
    """Publishes committed outbox rows to JetStream, in id order, pipelined, after commit.

    Each row is claimed (`in_flight` with a lease; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
    replicas share the work instead of publishing the same rows), published with
    `Nats-Msg-Id` = row id (a re-publish after a crash is dropped by the server's duplicate
    window), then marked `published` with the PubAck's stream and sequence. A failed publish
    puts the row back to `pending` with `attempts`, `last_error` and a back-off; rows are never
    dropped. Only a message the stream can never accept (too large) becomes `failed`.

    Args:
        db: the service database holding the outbox.
        js: a JetStream context.
        outbox: the Outbox whose commits wake this relay.
        batch: rows claimed and published together.
        poll_interval: seconds between polls when nothing wakes the relay (other replicas'
            commits, back-off expiries).
        lease: seconds a claim lasts; a relay that dies mid-batch leaves its rows claimable again
            after this.
        publish_timeout: seconds to wait for the PubAcks of one batch.
        max_backoff: cap of a row's retry delay after failed publishes.
    """

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        *,
        outbox: Outbox | None = None,
        batch: int = 256,
        poll_interval: float = 1.0,
        lease: float = 30.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.db = db
        self.js = js
        self.batch = batch
        self.poll_interval = poll_interval
        self.lease = lease
        self.publish_timeout = publish_timeout
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        if outbox is not None:
            outbox.on_commit(self.notify)

    def notify(self) -> None:
        """Wake the relay: rows were committed (or NATS came back)."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay loop in a background task."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the batch in progress, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._task, grace)
        except TimeoutError:
            log.warning("outbox relay did not stop in %.0fs; claimed rows return after their lease", grace)
        finally:
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, so a commit that lands during it triggers the next one.
            self._wake.clear()
            try:
                published, claimed = await self.run_once()
            except Exception:
                log.exception("outbox relay pass failed")
                published, claimed = 0, 1
                self._failures += 1
            if self._stopping:
                return
            if claimed and published == claimed:
                self._failures = 0
                if claimed >= self.batch:
                    continue  # more rows are probably waiting
            delay = self.poll_interval
            if claimed and published < claimed:
                delay = min(self.max_backoff, 0.2 * 2 ** min(self._failures, 10))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def run_once(self) -> tuple[int, int]:
        """Claim, publish and settle one batch.

        Returns:
            (rows published, rows claimed).
        """
        rows = await self.claim()
        if not rows:
            return 0, 0
        results = await self.publish(rows)
        published = await self.settle(rows, results)
        if published < len(rows):
            self._failures += 1
        return published, len(rows)

    async def claim(self) -> list[Claimed]:
        """Mark up to `batch` due rows `in_flight` with a lease and return them in id order.

        On SQLite the file belongs to one process, so the lease is kept in that process's memory
        (`_SqliteClaims`) instead of an UPDATE: a relay pass then costs one write transaction
        (the settle), not two. Relays sharing the database in the process still split the rows,
        and a relay that dies mid-batch leaves them claimable after the lease, as on PostgreSQL.
        """
        now = datetime.now(UTC)
        params: dict[str, Any] = {"b_now": now, "b_limit": self.batch}
        if self.db.is_sqlite:
            claims = _SqliteClaims.of(self.db)
            async with claims.lock:
                held = claims.held()
                if len(held) <= self.batch:
                    params["b_limit"] = self.batch + len(held)
                    found = (await self.db.fetch(_DUE_READ, params)).all()
                    rows = [Claimed(*row) for row in found if row.id not in held][: self.batch]
                else:
                    params["b_held"] = list(held)
                    rows = [Claimed(*row) for row in (await self.db.fetch(_DUE_UNHELD, params)).all()]
                claims.take([row.id for row in rows], self.lease)
            return rows
        async with self.db.transaction() as session:
            rows = [Claimed(*row) for row in (await session.execute(_DUE_UNLOCKED, params)).all()]
            if rows:
                until = now + timedelta(seconds=self.lease)
                await session.execute(_LEASE, {"b_ids": [row.id for row in rows], "b_until": until})
        return rows

    async def publish(self, rows: Sequence[Claimed]) -> list[api.PubAck | BaseException]:
        """Publish `rows` pipelined (all PubAcks awaited together); one result per row, in order."""
        messages = [(row.subject, row.payload, row.headers) for row in rows]
        return await publish_batch(self.js, messages, ack_timeout=self.publish_timeout)

    async def settle(self, rows: Sequence[Claimed], results: Sequence[api.PubAck | BaseException]) -> int:
        """Record each publish's outcome in one transaction; returns how many were published."""
        now = datetime.now(UTC)
        published: list[dict[str, Any]] = []
        retry: list[dict[str, Any]] = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, api.PubAck):
                # A duplicate PubAck carries the first copy's sequence, which is what we record.
                published.append(
                    {"b_id": row.id, "published_at": now, "stream": result.stream, "stream_seq": result.seq}
                )
                continue
            attempts = row.attempts + 1
            permanent = isinstance(result, APIError) and result.err_code in _PERMANENT_PUBLISH_ERRORS
            delay = min(self.max_backoff, 0.5 * 2 ** min(attempts, 10))
            retry.append(
                {
                    "b_id": row.id,
                    "status": FAILED if permanent else PENDING,
                    "attempts": attempts,
                    "last_error": _describe(result)[:2000],
                    "available_at": now + timedelta(seconds=delay),
                }
            )
        if retry:
            log.warning(
                "outbox publish failed for %d of %d rows: %s", len(retry), len(rows), retry[0]["last_error"]
            )

        async def record(session: AsyncSession) -> None:
            if published:
                await session.execute(_PUBLISHED, published)
            if retry:
                await session.execute(_RETRY, retry)

        # With the deliveries and turns committing at the same moment (one fsync for all).
        await self.db.group.run(record)
        if self.db.is_sqlite:
            _SqliteClaims.of(self.db).drop([row.id for row in rows])
        return len(published)

    async def purge(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Delete published rows older than the replay horizon; pending and failed rows stay.

        Returns:
            The number of rows deleted.
        """
        cutoff = datetime.now(UTC) - older_than
        return await self.db.delete_in_batches(
            OutboxRow, OutboxRow.status == PUBLISHED, OutboxRow.published_at < cutoff
        )

    async def republish(
        self,
        from_id: str | None = None,
        to_id: str | None = None,
        *,
        since: datetime | None = None,
        include_failed: bool = False,
    ) -> int:
        """Admin: publish a range of already published rows again (after a JetStream loss).

        Rows keep their ids, so copies within the stream's duplicate window are dropped by the
        server and later copies by the consumers' inboxes: replaying is harmless.

        Args:
            from_id: first row id (inclusive); ids sort by creation time.
            to_id: last row id (inclusive).
            since: alternatively, every row created at or after this time.
            include_failed: also retry rows the relay gave up on.

        Returns:
            The number of rows reset to pending.
        """
        statuses = [PUBLISHED, FAILED] if include_failed else [PUBLISHED]
        conditions = [OutboxRow.status.in_(statuses)]
        if from_id is not None:
            conditions.append(OutboxRow.id >= from_id)
        if to_id is not None:
            conditions.append(OutboxRow.id <= to_id)
        if since is not None:
            conditions.append(OutboxRow.created_at >= since)
        if len(conditions) == 1:
            raise ValueError("republish needs a range: from_id/to_id or since")
        async with self.db.transaction() as session:
            result = await session.execute(
                update(OutboxRow)
                .where(and_(*conditions))
                .values(status=PENDING, attempts=0, available_at=datetime.now(UTC))
                .execution_options(synchronize_session=False)
            )
        self.notify()
        return result.rowcount or 0

    async def counts(self) -> dict[str, int]:
        """Rows per status, for metrics and health (a growing `pending` means NATS is not taking them)."""
        async with self.db.read() as session:
            rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
            return {status: count for status, count in rows.all()}


def _describe(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    return f"{error.__class__.__name__}: {text}"


class _SqliteClaims:
    """The relay leases of one SQLite database, held in this process (see `OutboxRelay.claim`)."""

    _by_db: weakref.WeakKeyDictionary[Database, _SqliteClaims] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self._until: dict[str, float] = {}

    @classmethod
    def of(cls, db: Database) -> _SqliteClaims:
        """The claims of `db` (created on first use)."""
        claims = cls._by_db.get(db)
        if claims is None:
            claims = cls._by_db[db] = cls()
        return claims

    def held(self) -> list[str]:
        """Row ids under an unexpired lease (expired ones are forgotten)."""
        now = time.monotonic()
        self._until = {row_id: until for row_id, until in self._until.items() if until > now}
        return list(self._until)

    def take(self, row_ids: Sequence[str], lease: float) -> None:
        """Lease `row_ids` for `lease` seconds."""
        until = time.monotonic() + lease
        self._until.update(dict.fromkeys(row_ids, until))

    def drop(self, row_ids: Sequence[str]) -> None:
        """End the leases of `row_ids` (settled)."""
        for row_id in row_ids:
            self._until.pop(row_id, None)
