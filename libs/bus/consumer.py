"""Idempotent JetStream consumers: pull requests (libs.bus.pull), an optional prepare step outside
the transaction, inbox + effects in one transaction, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import hoplog, inbox
from libs.bus.deadletter import add_dead_letter
from libs.bus.envelope import (
    CAUSATION_ID,
    CORRELATION_ID,
    EVENT_TYPE,
    REPLAY_FOR,
    PoisonMessage,
    decode,
    event_id_of,
    meta_value,
)
from libs.bus.errors import Permanent, Retryable
from libs.bus.outbox import Outbox
from libs.bus.pull import PullRequests
from libs.bus.streams import ConsumerSpec, subject_for
from libs.store import Database
from libs.telemetry.correlation import correlation_id as current_correlation_id

log = logging.getLogger(__name__)
tracer = trace.get_tracer("libs.bus")
T = TypeVar("T")

ADVISORY_MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
ACK_TIMEOUT_REASON = "max deliveries (ack timeout)"
#: Consumer stats outcome of a delivery its subscription's `relevant` check skipped.
IRRELEVANT = "irrelevant"
#: The delay of the nak that hands a message back on stop. A plain nak puts the message on the
#: server's redelivery queue at once, and of several handed back together the server may deliver
#: the first after the others (nats-server 2.15: naks of 1-4 redelivered as 2, 3, 4, 1); after a
#: short delay its pending check hands them back together, in stream order (decision 0041).
HAND_BACK_DELAY_S = 0.05


@dataclass
class MessageContext:
    """What a handler gets besides the event.

    Attributes:
        session: the write session of this delivery's transaction: the inbox row, the handler's
            effects, the outbox rows it adds and the hop log row commit together.
        event_id: the business event id (stable across redeliveries and replays).
        event_type: full proto name.
        subject: the NATS subject.
        headers: the message headers.
        correlation_id: the flow's correlation id (also set in libs.telemetry's context).
        causation_id: the id of the message that caused this event, if any.
        delivery: 1 for the first delivery, more for redeliveries.
        stream_seq: the message's sequence in its stream.
        consumer: the durable consumer's name.
        outbox: where `emit` adds events (the consumer's outbox), if any.
        prepared: what the subscription's `prepare` returned for this delivery (None without one).
    """

    session: AsyncSession
    event_id: str
    event_type: str
    subject: str
    headers: Mapping[str, str]
    correlation_id: str
    causation_id: str | None
    delivery: int
    stream_seq: int
    consumer: str
    outbox: Outbox | None = None
    prepared: Any = None

    async def emit(self, event: Message, *, key: str | None = None) -> str:
        """Add an event caused by this one to the outbox, in this transaction.

        The new event carries this flow's correlation id, this event as its cause and the
        current (consumer) span as its trace parent.

        Returns:
            The new event's id.
        """
        if self.outbox is None:
            raise RuntimeError("this consumer has no outbox; pass one to Consumer / EventBus")
        return await self.outbox.add(
            self.session, event, correlation_id=self.correlation_id, causation_id=self.event_id, key=key
        )


@dataclass
class PrepareContext:
    """What a subscription's `prepare` gets besides the event: no session and no lock.

    Attributes:
        db: the service database; read with `db.read()` (on SQLite a WAL snapshot that never waits
            for the writer). Keep each read session short: close it before any slow call.
        event_id: the business event id (stable across redeliveries and replays).
        event_type: full proto name.
        subject: the NATS subject.
        headers: the message headers.
        correlation_id: the flow's correlation id (also set in libs.telemetry's context).
        causation_id: the id of the message that caused this event, if any.
        delivery: 1 for the first delivery, more for redeliveries.
        stream_seq: the message's sequence in its stream.
        consumer: the durable consumer's name.
    """

    db: Database
    event_id: str
    event_type: str
    subject: str
    headers: Mapping[str, str]
    correlation_id: str
    causation_id: str | None
    delivery: int
    stream_seq: int
    consumer: str
    _held: AsyncExitStack = field(repr=False)

    async def hold(self, resource: AbstractAsyncContextManager[T]) -> T:
        """Enter `resource` now and exit it once this delivery is settled.

        Settled means after the handler's transaction committed or rolled back, or after prepare
        failed. For what must be held from prepare through the commit, e.g. a per-key
        `asyncio.Lock` so two messages of one order never interleave their prepare and transaction
        steps. Take such locks before the transaction, never inside a handler: a handler holds the
        SQLite writer lock and must not wait for a lock whose holder waits for the writer.

        Returns:
            What entering `resource` returned.
        """
        return await self._held.enter_async_context(resource)


class KeyedLocks:
    """One `asyncio.Lock` per key, created on first use and dropped when nobody holds or waits for
    it: `await pctx.hold(locks.of(order_id))` keeps one message at a time per key in this process,
    from its prepare step until its transaction ends."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of `key` for the block."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


Handler = Callable[[Message, MessageContext], Awaitable[None]]
Prepare = Callable[[Message, PrepareContext], Awaitable[Any]]
#: A delivery's unit of work: inbox claim, handler and hop row, in the session it is given.
Unit = Callable[[AsyncSession], Awaitable[None]]
Runner = Callable[[Message, str, Unit], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A handler bound to a durable pull consumer.

    Args:
        durable: the consumer's durable name, unique per service and purpose
            (`erp-adapter.orders`); also the inbox's consumer key and the default hop name.
        filter_subjects: subjects (or event classes) to receive.
        handler: `async def handler(event, ctx)`; raise Retryable, Permanent, or anything else
            (treated as transient) to fail.
        stream: the stream to read; None finds it from the filter subjects.
        ack_wait: seconds before an unacknowledged delivery is redelivered; long handlers are
            kept alive with in-progress acks.
        max_deliver: deliveries before the message is dead-lettered.
        backoff: retry delays after failed deliveries; the last repeats.
        max_ack_pending: deliveries in flight across replicas.
        batch: messages asked for at once when one at a time (received ones queue up in order).
        concurrency: handlers running at once in this process; 1 keeps stream order.
        hop: name in the hop log; defaults to `durable`.
        snapshot: store a redacted payload snapshot in the hop log.
        relevant: `async def relevant(event) -> bool`, a cheap check (a read, no lock) before the
            transaction; False acknowledges the delivery with no transaction, inbox row or hop
            row: an event this service has nothing to do for (counted as `irrelevant`). It runs
            before the delivery's span: a skipped delivery leaves no trace but the count. A check
            that raises counts as relevant. It must be safe to skip: what it reads may change
            just after, so the handler's effect must also come some other way (a timer, a later
            event).
        prepare: `async def prepare(event, pctx) -> Any`, run after decoding and `relevant` and
            before the transaction, holding no database lock: the place for slow calls outside
            the database (an ERP over HTTP), which inside the transaction would keep it open and,
            on SQLite, every other writer of the process waiting. It may read with
            `pctx.db.read()` and keep a lock until the delivery is settled with `pctx.hold(...)`;
            the handler gets its result as `ctx.prepared`. Contract: prepare must be idempotent
            and safe to run again, because it runs again on every redelivery (a failed handler, a
            lost ack, a crash between prepare and commit) and nothing it did outside the database
            is rolled back; the handler, in its transaction, must re-check whatever prepare read
            that may have changed since (another replica may have committed in between). A
            failure raised in prepare is handled as the handler's (Retryable and other exceptions
            nak with back-off, then dead-letter; Permanent and PoisonMessage dead-letter). An
            event a read finds in the inbox already is acked as a duplicate without running
            prepare; the inbox claim in the transaction stays the authority.
        group_commit: run the transaction (inbox claim, handler, hop row) through the database's
            group commit (`libs.store.group`): deliveries in flight at the same moment share one
            transaction, and each is acked only after the commit that holds it. A handler
            then must not wait for a lock held outside the transaction (take it in prepare with
            `pctx.hold`). False gives every delivery its own transaction.
        runner: `async def runner(event, event_id, unit)`, which runs the delivery's unit of work
            (`await unit(session)`: inbox claim, handler, hop row) in a transaction of the
            subscriber's own and returns once that transaction is committed: an actor's turn that
            applies the event to the state it holds, instead of a hand-off row and a second turn
            (the orders service). Contract: the unit runs in the very session whose commit also
            commits what the runner does with the event, once per attempt; what the unit raises
            (a redelivery's `DuplicateEvent`, the handler's `Permanent`) leaves the runner
            unchanged and rolls everything of that attempt back. The runner may raise itself
            (`Permanent` for an event it cannot address). `group_commit` is then the runner's
            business (an actor turn goes through the group commit on its own).
    """

    durable: str
    filter_subjects: Sequence[str | type[Message]]
    handler: Handler
    stream: str | None = None
    ack_wait: float = 30.0
    max_deliver: int = 8
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 300.0, 600.0, 900.0)
    max_ack_pending: int = 256
    batch: int = 64
    concurrency: int = 16
    hop: str | None = None
    snapshot: bool = True
    relevant: Callable[[Message], Awaitable[bool]] | None = None
    prepare: Prepare | None = None
    group_commit: bool = True
    runner: Runner | None = None

    @property
    def subjects(self) -> tuple[str, ...]:
        """The filter subjects as strings."""
        return tuple(s if isinstance(s, str) else subject_for(s) for s in self.filter_subjects)

    def spec(self, stream: str | None = None) -> ConsumerSpec:
        """The ConsumerSpec to provision for this subscription."""
        stream = stream or self.stream
        if stream is None:
            raise ValueError(f"subscription {self.durable} has no stream")
        return ConsumerSpec(
            durable=self.durable,
            stream=stream,
            filter_subjects=self.subjects,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            backoff=self.backoff,
            max_ack_pending=self.max_ack_pending,
        )


@dataclass
class ConsumerStats:
    """Outcome counters since start, for metrics and tests."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


#: How long an ack waits for others to share its socket write, in seconds.
ACK_COALESCE_S = 0.002


class AckBatch:
    """Acks that share socket writes: those of a moment are published together.

    Every ack is a publish on the NATS connection, and nats-py writes what is pending each time its
    flusher task runs, about once per turn of the event loop: a message handled, one `send`. On
    loopback each send also makes the sender do the receiving end's TCP work, and in the
    flash-sale burst the ops service, skipping status changes one after the other, spent 47 % of
    its CPU in those writes. Here an ack waits up to `delay` for others, then all are published in
    one go, which the flusher writes at once.

    An ack still waiting when the process dies is lost, like any ack in flight: the server
    redelivers the message after ack_wait, and the inbox answers it as a duplicate (or the
    relevance check skips it again). `flush` sends what waits (on stop).
    """

    def __init__(self, delay: float = ACK_COALESCE_S) -> None:
        self.delay = delay
        self._waiting: list[Msg] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, msg: Msg) -> None:
        """Ack `msg` within `delay`, together with the others of that moment."""
        self._waiting.append(msg)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._send)

    def _send(self) -> None:
        self._timer = None
        waiting, self._waiting = self._waiting, []
        if waiting:
            task = asyncio.get_running_loop().create_task(self._ack(waiting))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _ack(msgs: list[Msg]) -> None:
        # Each publish only appends to the client's pending buffer (none of them waits), so the
        # flusher finds them all there on its next run.
        for msg in msgs:
            await _quietly(msg.ack())

    async def flush(self) -> None:
        """Send the acks that wait, and wait for those being sent."""
        if self._timer is not None:
            self._timer.cancel()
        self._send()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


class Consumer:
    """Runs one Subscription: pull, handle with bounded concurrency, ack after commit.

    For each message: trace context and correlation id are extracted; the event is decoded by
    its type header and validated (poison is dead-lettered at once); the subscription's
    `relevant` check may ack it unhandled; with a `prepare`, a read of the inbox acks an event
    already applied and otherwise prepare runs, outside any transaction; then in one transaction
    the inbox row is inserted (a duplicate rolls back and is acked), the handler runs and the
    hop is logged; after commit the message is acked. A plain ack suffices: if it is lost, the
    redelivery finds the inbox row and is acked as a duplicate.

    Args:
        db: the service database (inbox, dead letters, hop log, handler state).
        nc: a connected NATS client.
        subscription: what to consume and how.
        stream: the stream name (overrides `subscription.stream`).
        outbox: lets handlers `ctx.emit` events in their transaction.
        request_expires: seconds each pull request waits on the server (libs.bus.pull).
    """

    def __init__(
        self,
        db: Database,
        nc: NATS,
        subscription: Subscription,
        *,
        stream: str | None = None,
        outbox: Outbox | None = None,
        request_expires: float = 2.0,
    ) -> None:
        self.db = db
        self.nc = nc
        self.js = nc.jetstream()
        self.subscription = subscription
        self.spec = subscription.spec(stream)
        self.outbox = outbox
        self.request_expires = request_expires
        self.hop = subscription.hop or subscription.durable
        self.stats = ConsumerStats()
        self._inbox = inbox.Inbox(db)
        self._inflight: dict[asyncio.Task[None], Msg] = {}  # handler task -> its message
        self._queue: deque[Msg] = deque()  # one at a time: received, not yet handled
        self._unhandled: list[Msg] = []  # received while stopping: handed back by `stop`
        self._queued = asyncio.Event()
        self._wake = asyncio.Event()  # a handler finished or a pull request ended
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._pull: PullRequests | None = None
        self._acks = AckBatch()
        self.watcher = MaxDeliveriesWatcher(
            db,
            nc,
            stream=self.spec.stream,
            durable=self.durable,
            hop=self.hop,
            on_dead_letter=lambda: self.stats.add(hoplog.DEAD_LETTER),
        )

    @property
    def durable(self) -> str:
        """The durable consumer name."""
        return self.spec.durable

    @property
    def _in_order(self) -> bool:
        return self.subscription.concurrency == 1

    async def start(self) -> None:
        """Bind to the (provisioned) durable consumer, watch its advisories and start pulling."""
        self._stopping = False
        self._pull = PullRequests(
            self.nc,
            stream=self.spec.stream,
            durable=self.durable,
            on_message=self._received,
            on_credit=self._wake.set,
            expires=self.request_expires,
        )
        await self._pull.start()
        await self.watcher.start()
        self._tasks = [asyncio.create_task(self._request_loop(), name=f"consumer:{self.durable}")]
        if self._in_order:
            self._tasks.append(asyncio.create_task(self._work_in_order(), name=f"in-order:{self.durable}"))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop pulling, let in-flight handlers finish (up to `grace` seconds), then unsubscribe.

        What was received and not handled (queued, still arriving, or a handler cancelled after
        the grace) is handed back with a nak (`HAND_BACK_DELAY_S`): the server delivers it again
        a moment later, to another replica or to this consumer after its restart, in stream
        order, instead of after ack_wait behind newer messages. Each nak counts as a delivery
        (decision 0041); a handler that had committed before it was cancelled is absorbed by the
        inbox.
        """
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        unhandled = [*self._queue]
        self._queue.clear()
        if self._inflight:
            _done, late = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in late:
                unhandled.append(self._inflight[task])
                task.cancel()
            if late:  # let them unwind (a commit under way finishes; the inbox absorbs it)
                await asyncio.wait(late, timeout=1.0)
        await self._acks.flush()
        await self.watcher.stop()
        if self._pull is not None:
            with contextlib.suppress(Exception):
                await self._pull.stop()  # no more messages arrive after this
            self._pull = None
        unhandled += self._unhandled
        self._unhandled = []
        if not self.nc.is_connected:
            return  # a nak would only wait in the client's buffer: the server redelivers after ack_wait
        for msg in sorted(unhandled, key=lambda msg: msg.metadata.sequence.stream):
            await _quietly(msg.nak(delay=HAND_BACK_DELAY_S))
        if unhandled:
            log.info("consumer %s handed back %d unhandled messages", self.durable, len(unhandled))

    async def _request_loop(self) -> None:
        """Keep enough credit out that every free handler slot can get a message at once.

        The capacity is the concurrency, or, one at a time, the batch (received messages queue up
        in order, so a burst costs one pull request, not one per message). More is asked for
        once a quarter of the capacity is free, or at once when nothing is asked for.
        """
        pull = self._pull
        assert pull is not None
        capacity = self.subscription.batch if self._in_order else self.subscription.concurrency
        threshold = max(1, capacity // 4)
        while not self._stopping:
            self._wake.clear()  # before looking, so a wake-up while deciding is not lost
            pull.take_back_expired()
            held = len(self._inflight) + len(self._queue)
            free = capacity - held - pull.outstanding
            wait = pull.refused_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if free >= threshold or (free > 0 and not pull.outstanding):
                try:
                    await pull.request(free)
                except Exception as error:  # disconnected, closing: asked again after its back-off
                    log.warning("pull request for %s failed (%s); retrying", self.durable, error)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pull.expiry_due_in())

    def _received(self, msg: Msg) -> None:
        """A message from any of this process's pull requests: handle it now, or queue it in order."""
        if self._stopping:
            self._unhandled.append(msg)  # handed back by `stop`
            return
        if self._in_order:
            self._queue.append(msg)
            self._queued.set()
            return
        self._start_handling(msg)

    def _start_handling(self, msg: Msg) -> asyncio.Task[None]:
        task = asyncio.create_task(self._handle(msg))
        self._inflight[task] = msg
        task.add_done_callback(self._handled)
        return task

    async def _work_in_order(self) -> None:
        """Handle queued messages one after the other, in the order received (stream order).

        Each message gets its own task, as in the concurrent case, so its context (correlation id,
        span) is its own.
        """
        while not self._stopping:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            await asyncio.wait([self._start_handling(self._queue.popleft())])

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("consumer %s: unhandled error", self.durable, exc_info=task.exception())

    async def _handle(self, msg: Msg) -> None:
        started = time.perf_counter()
        headers: Mapping[str, str] = msg.headers or {}
        replay_for = headers.get(REPLAY_FOR)
        if replay_for is not None and replay_for != self.durable:
            await _quietly(msg.ack())  # a dead-letter replay meant for another consumer of this subject
            return
        event = None
        if self.subscription.relevant is not None:
            event = self._well_formed(msg, headers)
            if event is not None and not await self._relevant(event):
                # Acknowledged before any span, keepalive or transaction: a subscription that asks
                # `relevant` skips most of what it is sent (ops: every status change of an order
                # with no exception, about six per order).
                self._acks.add(msg)
                self.stats.add(IRRELEVANT)
                return
        metadata = msg.metadata
        delivery = metadata.num_delivered
        correlation = headers.get(CORRELATION_ID) or event_id_of(headers) or ""
        current_correlation_id.set(correlation or None)  # this task's own context copy
        attributes = {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": msg.subject,
            "messaging.consumer.group.name": self.durable,
            "messaging.message.id": event_id_of(headers) or "",
            "messaging.message.delivery_count": delivery,
            "retail.correlation_id": correlation,
        }
        # Keep a slow handler's delivery alive instead of letting ack_wait redeliver it meanwhile.
        keepalive = _KeepAlive(msg, self.spec.ack_wait / 2)
        with tracer.start_as_current_span(
            f"process {msg.subject}",
            context=propagate.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:
            try:
                await self._process(msg, headers, delivery, correlation, started, event)
            except PoisonMessage as poison:
                span.set_status(Status(StatusCode.ERROR, poison.reason))
                await self._give_up(msg, headers, delivery, correlation, poison.reason, started)
            except Permanent as failure:
                span.set_status(Status(StatusCode.ERROR, failure.reason))
                await self._give_up(
                    msg, headers, delivery, correlation, f"permanent: {failure.reason}", started
                )
            except inbox.DuplicateEvent:
                span.set_attribute("retail.outcome", hoplog.DUPLICATE)
                await self._after_duplicate(msg, headers, delivery, correlation, started)
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                await self._failed(msg, headers, delivery, correlation, error, started)
            finally:
                keepalive.cancel()

    async def _relevant(self, event: Message) -> bool:
        """The subscription's `relevant`; True when it fails (the handler's own path then decides)."""
        assert self.subscription.relevant is not None
        try:
            return await self.subscription.relevant(event)
        except Exception:
            log.warning("relevance check failed; handling the event", exc_info=True)
            return True

    @staticmethod
    def _well_formed(msg: Msg, headers: Mapping[str, str]) -> Message | None:
        """The message's event if it decodes, validates and has an id; None if it is poison."""
        try:
            event = decode(headers, msg.data)
        except PoisonMessage:
            return None  # `_process` dead-letters it, under its span
        return event if event_id_of(headers) or meta_value(event, "event_id") else None

    async def _process(
        self,
        msg: Msg,
        headers: Mapping[str, str],
        delivery: int,
        correlation: str,
        started: float,
        event: Message | None = None,
    ) -> None:
        # `event`: already decoded, validated and found relevant by `_handle`
        if event is None:
            event = decode(headers, msg.data)
        event_id = event_id_of(headers) or meta_value(event, "event_id")
        if not event_id:
            raise PoisonMessage("no event id (Retail-Event-Id, Nats-Msg-Id or meta.event_id)")
        correlation = correlation or meta_value(event, "correlation_id") or event_id
        async with AsyncExitStack() as held:
            prepared = None
            if self.subscription.prepare is not None:
                prepared = await self._prepare(
                    self.subscription.prepare, event, event_id, msg, headers, delivery, correlation, held
                )

            async def unit(session: AsyncSession) -> None:
                await inbox.claim(session, self.durable, event_id)
                ctx = MessageContext(
                    session=session,
                    event_id=event_id,
                    event_type=headers.get(EVENT_TYPE, ""),
                    subject=msg.subject,
                    headers=headers,
                    correlation_id=correlation,
                    causation_id=headers.get(CAUSATION_ID),
                    delivery=delivery,
                    stream_seq=msg.metadata.sequence.stream,
                    consumer=self.durable,
                    outbox=self.outbox,
                    prepared=prepared,
                )
                await self.subscription.handler(event, ctx)
                await hoplog.record_hop(
                    session,
                    hop=self.hop,
                    outcome=hoplog.OK,
                    correlation_id=correlation,
                    event_id=event_id,
                    attempt=delivery,
                    latency_ms=_ms(started),
                    payload=event if self.subscription.snapshot else None,
                )

            if self.subscription.runner is not None:
                await self.subscription.runner(event, event_id, unit)
            elif self.subscription.group_commit:
                # Shares a transaction with the deliveries in flight at the same moment (this
                # consumer's and the process's other writers'); returns once committed.
                await self.db.group.run(unit)
            else:
                async with self.db.transaction() as session:
                    await unit(session)
        # A lost ack only means a redelivery, which the inbox row now answers as a duplicate.
        self._acks.add(msg)
        self.stats.add(hoplog.OK)

    async def _prepare(
        self,
        prepare: Prepare,
        event: Message,
        event_id: str,
        msg: Msg,
        headers: Mapping[str, str],
        delivery: int,
        correlation: str,
        held: AsyncExitStack,
    ) -> Any:
        """Run the subscription's prepare, unless a read shows the event applied already."""
        # A redelivery of an applied event (lost ack, republish) must not repeat prepare's
        # external calls. A read is enough to skip; the claim in the transaction decides.
        if await self._inbox.seen(self.durable, event_id):
            raise inbox.DuplicateEvent(f"{self.durable} already handled {event_id}")
        pctx = PrepareContext(
            db=self.db,
            event_id=event_id,
            event_type=headers.get(EVENT_TYPE, ""),
            subject=msg.subject,
            headers=headers,
            correlation_id=correlation,
            causation_id=headers.get(CAUSATION_ID),
            delivery=delivery,
            stream_seq=msg.metadata.sequence.stream,
            consumer=self.durable,
            _held=held,
        )
        with tracer.start_as_current_span(f"prepare {msg.subject}"):
            return await prepare(event, pctx)

    async def _after_duplicate(
        self, msg: Msg, headers: Mapping[str, str], delivery: int, correlation: str, started: float
    ) -> None:
        self._acks.add(msg)
        self.stats.add(hoplog.DUPLICATE)
        await self._log_hop(hoplog.DUPLICATE, headers, delivery, correlation, started, None)

    async def _failed(
        self,
        msg: Msg,
        headers: Mapping[str, str],
        delivery: int,
        correlation: str,
        error: Exception,
        started: float,
    ) -> None:
        retryable = isinstance(error, Retryable)
        reason = error.reason if retryable else f"{error.__class__.__name__}: {error}"
        if delivery >= self.spec.max_deliver:
            await self._give_up(
                msg,
                headers,
                delivery,
                correlation,
                f"retries exhausted after {delivery} deliveries: {reason}",
                started,
            )
            return
        delay = error.delay if retryable and error.delay is not None else self.spec.retry_delay(delivery)
        await _quietly(msg.nak(delay=delay))
        outcome = hoplog.RETRY if retryable else hoplog.ERROR
        self.stats.add(outcome)
        await self._log_hop(
            outcome, headers, delivery, correlation, started, f"{reason} (retry in {delay:g}s)"
        )

    async def _give_up(
        self,
        msg: Msg,
        headers: Mapping[str, str],
        delivery: int,
        correlation: str,
        reason: str,
        started: float,
    ) -> None:
        """Dead-letter and terminate: poison never loops (M3)."""
        metadata = msg.metadata
        try:
            async with self.db.transaction() as session:
                await add_dead_letter(
                    session,
                    consumer=self.durable,
                    stream=metadata.stream,
                    stream_seq=metadata.sequence.stream,
                    subject=msg.subject,
                    payload=msg.data,
                    headers=headers,
                    reason=reason,
                    deliveries=delivery,
                )
                await hoplog.record_hop(
                    session,
                    hop=self.hop,
                    outcome=hoplog.DEAD_LETTER,
                    correlation_id=correlation or None,
                    event_id=event_id_of(headers),
                    attempt=delivery,
                    latency_ms=_ms(started),
                    detail=reason,
                )
        except Exception:
            # Not recorded, so not terminated: the message comes back and we try again.
            log.exception("consumer %s could not dead-letter seq %s", self.durable, metadata.sequence.stream)
            await _quietly(msg.nak(delay=self.spec.retry_delay(delivery)))
            return
        # If the term is lost the message returns; the dead letter's unique key keeps one row.
        await _quietly(msg.term())
        self.stats.add(hoplog.DEAD_LETTER)
        log.warning(
            "consumer %s dead-lettered %s seq %s: %s",
            self.durable,
            msg.subject,
            metadata.sequence.stream,
            reason,
        )

    async def _log_hop(
        self,
        outcome: str,
        headers: Mapping[str, str],
        delivery: int,
        correlation: str,
        started: float,
        detail: str | None,
    ) -> None:
        try:
            async with self.db.transaction() as session:
                await hoplog.record_hop(
                    session,
                    hop=self.hop,
                    outcome=outcome,
                    correlation_id=correlation or None,
                    event_id=event_id_of(headers),
                    attempt=delivery,
                    latency_ms=_ms(started),
                    detail=detail,
                )
        except Exception:
            log.exception("consumer %s could not write its hop log", self.durable)


class MaxDeliveriesWatcher:
    """The dead-letter safety net: records messages whose last delivery was never acknowledged.

    A handler that crashes or hangs on the last allowed delivery cannot dead-letter the message
    itself. JetStream then publishes `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`;
    this fetches the message by its stream sequence and dead-letters it with the reason
    "max deliveries (ack timeout)". Advisories are plain NATS messages: one sent while no
    replica listens is lost, and the reconcilers remain the last line of defence.

    Args:
        db: the service database.
        nc: a connected NATS client.
        stream: the consumer's stream.
        durable: the consumer's durable name.
        hop: hop-log name; defaults to `durable`.
        on_dead_letter: called after each new dead letter (metrics).
    """

    def __init__(
        self,
        db: Database,
        nc: NATS,
        *,
        stream: str,
        durable: str,
        hop: str | None = None,
        on_dead_letter: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.nc = nc
        self.js = nc.jetstream()
        self.stream = stream
        self.durable = durable
        self.hop = hop or durable
        self.on_dead_letter = on_dead_letter
        self._sub: Any = None

    async def start(self) -> None:
        """Subscribe to the advisory (a queue group, so one replica records each)."""
        self._sub = await self.nc.subscribe(
            ADVISORY_MAX_DELIVERIES.format(stream=self.stream, consumer=self.durable),
            queue=f"{self.durable}.dead-letter",
            cb=self._on_advisory,
        )

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_advisory(self, advisory: Msg) -> None:
        try:
            data = json.loads(advisory.data)
            seq, deliveries = int(data["stream_seq"]), int(data.get("deliveries", 0))
        except (ValueError, KeyError):
            log.error("unreadable MAX_DELIVERIES advisory for %s: %r", self.durable, advisory.data[:200])
            return
        subject, payload, headers, reason = "", b"", {}, ACK_TIMEOUT_REASON
        try:
            stored = await self.js.get_msg(self.stream, seq)
            subject, payload, headers = stored.subject or "", stored.data or b"", dict(stored.headers or {})
        except Exception as error:
            reason = f"{ACK_TIMEOUT_REASON}; message no longer in the stream: {error}"
        correlation = headers.get(CORRELATION_ID)
        try:
            async with self.db.transaction() as session:
                inserted = await add_dead_letter(
                    session,
                    consumer=self.durable,
                    stream=self.stream,
                    stream_seq=seq,
                    subject=subject,
                    payload=payload,
                    headers=headers,
                    reason=reason,
                    deliveries=deliveries,
                )
                if inserted:
                    await hoplog.record_hop(
                        session,
                        hop=self.hop,
                        outcome=hoplog.DEAD_LETTER,
                        correlation_id=correlation,
                        event_id=event_id_of(headers),
                        attempt=deliveries,
                        detail=reason,
                    )
        except Exception:
            log.exception("consumer %s could not dead-letter seq %s from the advisory", self.durable, seq)
            return
        if inserted:
            log.warning("consumer %s dead-lettered seq %s: %s", self.durable, seq, reason)
            if self.on_dead_letter is not None:
                self.on_dead_letter()


class _KeepAlive:
    """Sends in-progress acks every `interval` seconds until cancelled; costs one timer if never due."""

    def __init__(self, msg: Msg, interval: float) -> None:
        self._msg = msg
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(interval, self._beat)
        self._task: asyncio.Task[None] | None = None

    def _beat(self) -> None:
        self._task = self._loop.create_task(self._msg.in_progress())
        self._handle = self._loop.call_later(self._interval, self._beat)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def _quietly(acknowledgement: Awaitable[None]) -> None:
    """Send an ack/nak/term; when the connection is down the server redelivers, which is safe."""
    try:
        await acknowledgement
    except Exception as error:
        log.warning("acknowledgement not sent: %s", error)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
