"""The keyed actor runtime: activation, one mailbox per key, one transaction per turn, reminders.

How a message travels: `ActorRef.tell/ask` puts an envelope in the key's bounded mailbox (creating
the activation on first use); the key's worker task takes envelopes one at a time and runs each
as a *turn*: one unit of the database's group commit (`libs.store.group`: the turns of activations
waiting at the same moment share one transaction) in which the state is loaded if
needed, the handler runs, and the state is saved with a version check. If another replica saved
first the unit is rolled back and the message retried on fresh state; the retry locks the row
(`FOR UPDATE` on PostgreSQL) so it cannot lose again. See docs/decisions/0008-actor-turns-and-replicas.md.

`_run_turn` does everything a turn does inside the session it is given and returns what to apply
in memory after the commit; `_turn` hands it to the group commit, which returns only after the
shared commit, so nothing of a turn is applied in memory or answered before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import from_json
from sqlalchemy import bindparam, delete, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.actors.actor import Actor, ConflictError, Reminder, RuntimeStoppedError, StateCodec, Turn
from libs.actors.metrics import ActorMetrics
from libs.actors.table import REMINDER, STATE
from libs.store import Compiled, Database, UTCDateTime

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(UTC)


# Statements are built once and run as compiled statements (libs.store.Compiled): every turn
# runs them.
_STATE_ROW = select(STATE.c.version, STATE.c.state_json).where(
    STATE.c.kind == bindparam("b_kind"), STATE.c.key == bindparam("b_key")
)
_LOAD = Compiled(_STATE_ROW)
# The retry after a conflict locks the row so the retry cannot be overtaken again (SQLite
# renders no FOR UPDATE; its transactions already exclude each other).
_LOAD_LOCKED = Compiled(_STATE_ROW.with_for_update())
_VERSION = Compiled(
    select(STATE.c.version).where(STATE.c.kind == bindparam("b_kind"), STATE.c.key == bindparam("b_key"))
)
_INSERT_STATE = Compiled(
    insert(STATE).values(
        kind=bindparam("b_kind"),
        key=bindparam("b_key"),
        version=bindparam("b_version"),
        state_json=bindparam("b_json"),
        updated_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
_UPDATE_STATE = Compiled(
    update(STATE)
    .where(
        STATE.c.kind == bindparam("b_kind"),
        STATE.c.key == bindparam("b_key"),
        STATE.c.version == bindparam("b_old"),
    )
    .values(
        version=bindparam("b_version"),
        state_json=bindparam("b_json"),
        updated_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
_REMINDER_PK = (
    REMINDER.c.kind == bindparam("b_kind"),
    REMINDER.c.key == bindparam("b_key"),
    REMINDER.c.name == bindparam("b_name"),
)
_DELETE_REMINDER = Compiled(delete(REMINDER).where(*_REMINDER_PK))
_DELETE_FIRED = Compiled(delete(REMINDER).where(*_REMINDER_PK, REMINDER.c.token == bindparam("b_token")))
_INSERT_REMINDER = Compiled(
    insert(REMINDER).values(
        kind=bindparam("b_kind"),
        key=bindparam("b_key"),
        name=bindparam("b_name"),
        due_at=bindparam("b_due", type_=UTCDateTime()),
        payload_json=bindparam("b_payload"),
        token=bindparam("b_token"),
        claimed_until=None,
    )
)
# A due reminder nobody holds a live lease on. The conditions are repeated on the UPDATE so that
# a replica which waited for another's row lock re-checks them on the row as that one left it.
_CLAIMABLE = (
    REMINDER.c.due_at <= bindparam("b_now", type_=UTCDateTime()),
    or_(
        REMINDER.c.claimed_until.is_(None),
        REMINDER.c.claimed_until <= bindparam("b_now", type_=UTCDateTime()),
    ),
)
_DUE_REMINDERS = (
    select(REMINDER.c.kind, REMINDER.c.key, REMINDER.c.name)
    .where(REMINDER.c.kind.in_(bindparam("b_kinds", expanding=True)), *_CLAIMABLE)
    .order_by(REMINDER.c.due_at)
    .limit(bindparam("b_limit"))
    # Several replicas poll the same table: each claims rows the others have not locked.
    .with_for_update(skip_locked=True)
)
_CLAIM_DUE_REMINDERS = (
    update(REMINDER)
    .where(tuple_(REMINDER.c.kind, REMINDER.c.key, REMINDER.c.name).in_(_DUE_REMINDERS), *_CLAIMABLE)
    .values(claimed_until=bindparam("b_until", type_=UTCDateTime()))
    .returning(
        REMINDER.c.kind,
        REMINDER.c.key,
        REMINDER.c.name,
        REMINDER.c.token,
        REMINDER.c.payload_json,
        REMINDER.c.due_at,
    )
)

_SKIPPED = object()


class _Kind:
    """Everything the hot path needs about one kind, resolved at registration."""

    __slots__ = (
        "activations",
        "active",
        "actor",
        "codec",
        "conflicts",
        "kind",
        "outcomes",
        "reminders",
        "seconds",
    )

    def __init__(self, actor: Actor[Any], metrics: ActorMetrics | None) -> None:
        self.actor = actor
        self.kind = actor.kind
        self.codec = StateCodec(actor.state_type)
        self.outcomes: dict[str, Any] | None = None
        if metrics is not None:
            # Label children are bound once; `.labels()` per turn would take a lock and a dict lookup.
            self.outcomes = {o: metrics.turns.labels(self.kind, o) for o in ("ok", "error", "skipped")}
            self.seconds = metrics.turn_seconds.labels(self.kind)
            self.conflicts = metrics.conflicts.labels(self.kind)
            self.activations = metrics.activations.labels(self.kind)
            self.active = metrics.active.labels(self.kind)
            self.reminders = metrics.reminders_fired.labels(self.kind)


class _Envelope:
    __slots__ = ("message", "reply")

    def __init__(self, message: Any, reply: asyncio.Future[Any] | None) -> None:
        self.message = message
        self.reply = reply


class _Activation:
    """One active actor: its mailbox, its worker and the state as last committed."""

    __slots__ = (
        "closed",
        "closing",
        "in_turn",
        "key",
        "kind",
        "mailbox",
        "pending",
        "saved_json",
        "state",
        "task",
        "version",
    )

    def __init__(self, kind: _Kind, key: str, mailbox_size: int) -> None:
        self.kind = kind
        self.key = key
        self.mailbox: asyncio.Queue[_Envelope] = asyncio.Queue(mailbox_size)
        self.task: asyncio.Task[None] | None = None
        # None means "not loaded": the next turn reads the row (activation, or after a failure).
        self.state: Any = None
        self.version: int | None = None  # None: no row stored yet
        self.saved_json: str | None = None
        # Messages handed to this activation and not yet finished, including senders waiting
        # for mailbox space; passivation waits for zero so no message is stranded.
        self.pending = 0
        self.in_turn = False
        self.closing = False
        self.closed = False


@dataclass(slots=True)
class _Committed:
    """What a committed turn changes in memory."""

    reply: Any
    state: Any
    version: int | None
    saved_json: str | None
    stop: bool


class _Conflict(Exception):
    """Internal: the stored version moved under this turn; roll back and retry."""


@dataclass(frozen=True, slots=True)
class ActorRef:
    """A cheap handle on the actor `kind`/`key`; holding one activates and creates nothing.

    Attributes:
        kind: the actor kind.
        key: the actor key.
    """

    runtime: ActorRuntime
    kind: str
    key: str

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Send `message` and wait for the handler's reply.

        Args:
            message: any Python object (command dataclass, protobuf, ...).
            timeout: seconds for the whole exchange, waiting for mailbox space included. If it
                expires before the turn starts, the message is dropped; if the turn is running,
                it still completes (the outcome is unknown to this caller).

        Returns:
            What `receive` returned.

        Raises:
            Exception: whatever the handler raised (after the turn was rolled back).
            ConflictError: another replica kept changing the state; retries ran out.
            RuntimeStoppedError: the runtime is not running.
            TimeoutError: `timeout` expired.
        """
        return await self.runtime._ask(self.kind, self.key, message, timeout)

    async def tell(self, message: Any) -> None:
        """Send `message` without waiting for the turn; returns once it is in the mailbox.

        Waits while the mailbox is full (back-pressure). Handler errors are logged.

        Raises:
            RuntimeStoppedError: the runtime is not running.
        """
        await self.runtime._send(self.kind, self.key, _Envelope(message, None))


class ActorRuntime:
    """Hosts keyed actors of the given kinds on one database.

    Args:
        db: the service database (tables from `libs.actors.MIGRATIONS`).
        actor_types: `Actor` subclasses (instantiated without arguments) or ready instances (when
            the handler needs collaborators, e.g. an outbox).
        idle_after_s: deactivate an actor after this long without messages.
        reminder_poll_s: how often to look for due reminders; None runs no poller (call
            `fire_due_reminders` yourself).
        clock: the time source for `Turn.now()` and reminders (UTC, timezone-aware).
        mailbox_size: messages queued per actor before senders wait.
        max_conflict_retries: how many times a turn is retried on fresh state before the caller
            gets `ConflictError`.
        reminder_lease_s: how long a claimed reminder is left to its turn before it fires again.
        reminder_batch: reminders claimed per poll.
        metrics: Prometheus metrics to update, or None.
    """

    def __init__(
        self,
        db: Database,
        actor_types: Iterable[type[Actor[Any]] | Actor[Any]],
        *,
        idle_after_s: float = 300.0,
        reminder_poll_s: float | None = 1.0,
        clock: Clock = utc_now,
        mailbox_size: int = 1000,
        max_conflict_retries: int = 5,
        reminder_lease_s: float = 60.0,
        reminder_batch: int = 100,
        metrics: ActorMetrics | None = None,
    ) -> None:
        self._db = db
        self._kinds: dict[str, _Kind] = {}
        for item in actor_types:
            actor = item() if isinstance(item, type) else item
            if not getattr(actor, "kind", None) or getattr(actor, "state_type", None) is None:
                raise TypeError(f"{type(actor).__name__} must set `kind` and `state_type`")
            if actor.kind in self._kinds:
                raise ValueError(f"actor kind {actor.kind!r} registered twice")
            self._kinds[actor.kind] = _Kind(actor, metrics)
        self._idle_after_s = idle_after_s
        self._poll_s = reminder_poll_s
        self._clock = clock
        self._mailbox_size = mailbox_size
        self._max_retries = max_conflict_retries
        self._lease = timedelta(seconds=reminder_lease_s)
        self._reminder_batch = reminder_batch
        self._active: dict[tuple[str, str], _Activation] = {}
        self._running = False
        self._poller: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> ActorRuntime:
        """Accept messages and start the reminder poller."""
        self._running = True
        if self._poll_s is not None:
            self._poller = asyncio.create_task(self._poll_loop(), name="actor-reminder-poller")
        return self

    async def stop(self, timeout: float = 10.0) -> None:
        """Refuse new messages, finish in-flight turns and drain mailboxes, then end the workers.

        Args:
            timeout: seconds to wait for the mailboxes to drain; turns still running after it
                are cancelled (their transactions roll back, their callers get an error).
        """
        self._running = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        tasks = []
        for act in list(self._active.values()):
            act.closing = True
            if act.task is None:
                continue
            if not act.in_turn and act.mailbox.empty():
                act.task.cancel()  # idle worker waiting for a message that will not come
            tasks.append(act.task)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> ActorRuntime:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- addressing ------------------------------------------------------------------------------

    def ref(self, kind: str, key: str) -> ActorRef:
        """A reference to actor `kind`/`key`: cheap, creates nothing until a message arrives.

        Raises:
            KeyError: `kind` is not hosted by this runtime.
        """
        if kind not in self._kinds:
            raise KeyError(f"unknown actor kind {kind!r}")
        return ActorRef(self, kind, key)

    def is_active(self, kind: str, key: str) -> bool:
        """Whether actor `kind`/`key` is active in this process."""
        return (kind, key) in self._active

    @property
    def active_count(self) -> int:
        """How many actors are active in this process."""
        return len(self._active)

    async def stored_state(self, kind: str, key: str) -> Any | None:
        """The actor's last committed state read from storage (None if never saved).

        For queries and tests; it does not go through the actor, so it may be a turn behind.
        """
        codec = self._kinds[kind].codec
        async with self._db.read() as session:
            row = (await session.execute(_LOAD, {"b_kind": kind, "b_key": key})).first()
        return None if row is None else codec.load(row.state_json)

    # -- sending ---------------------------------------------------------------------------------

    async def _ask(self, kind: str, key: str, message: Any, timeout: float | None) -> Any:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if timeout is None:
            await self._send(kind, key, _Envelope(message, reply))
            return await reply
        # Cancelling the wait cancels `reply`, which the worker reads as "caller gave up".
        async with asyncio.timeout(timeout):
            await self._send(kind, key, _Envelope(message, reply))
            return await reply

    async def _send(self, kind: str, key: str, envelope: _Envelope) -> None:
        if not self._running:
            raise RuntimeStoppedError("actor runtime is not running")
        act = self._active.get((kind, key))
        if act is None:
            act = self._activate(kind, key)
        act.pending += 1
        try:
            await act.mailbox.put(envelope)
        except BaseException:
            act.pending -= 1
            raise
        if act.closed:
            # The worker ended (runtime stopping) while we waited for space; nobody will run it.
            raise RuntimeStoppedError("actor runtime stopped before the message was taken")

    def _activate(self, kind: str, key: str) -> _Activation:
        binding = self._kinds[kind]
        act = _Activation(binding, key, self._mailbox_size)
        # A fresh context: the worker outlives the call that activated it, and must not inherit that
        # call's request-scoped variables (its gRPC deadline, correlation id, trace span).
        act.task = asyncio.create_task(
            self._work(act), name=f"actor:{kind}:{key}", context=contextvars.Context()
        )
        self._active[(kind, key)] = act
        if binding.outcomes is not None:
            binding.activations.inc()
            binding.active.inc()
        return act

    # -- the worker ------------------------------------------------------------------------------

    async def _work(self, act: _Activation) -> None:
        envelope: _Envelope | None = None
        try:
            while True:
                if act.mailbox.empty():
                    if act.closing:
                        return
                    try:
                        async with asyncio.timeout(self._idle_after_s):
                            envelope = await act.mailbox.get()
                    except TimeoutError:
                        if act.pending == 0:
                            return  # passivate: the state is already stored
                        continue
                else:
                    envelope = act.mailbox.get_nowait()
                act.in_turn = True
                try:
                    stop = await self._handle(act, envelope)
                finally:
                    act.in_turn = False
                    act.pending -= 1
                envelope = None
                if stop:
                    if act.pending == 0:
                        return
                    act.state = None  # messages already queued go to a fresh load
        finally:
            self._deactivate(act, envelope)

    def _deactivate(self, act: _Activation, current: _Envelope | None) -> None:
        act.closed = True
        if self._active.get((act.kind.kind, act.key)) is act:
            del self._active[(act.kind.kind, act.key)]
            if act.kind.outcomes is not None:
                act.kind.active.dec()
        stranded = [current] if current is not None else []
        while not act.mailbox.empty():
            stranded.append(act.mailbox.get_nowait())
        for envelope in stranded:
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(RuntimeStoppedError("actor runtime stopped"))

    async def _handle(self, act: _Activation, envelope: _Envelope) -> bool:
        """Run one message as a turn (retrying on conflicts); returns whether the actor stops."""
        reply_to = envelope.reply
        if reply_to is not None and reply_to.done():
            return False  # the asker timed out before the turn started
        binding = act.kind
        started = time.perf_counter()
        outcome = "ok"
        try:
            for attempt in range(self._max_retries + 1):
                try:
                    committed = await self._turn(act, envelope.message, lock=attempt > 0)
                    break
                except _Conflict:
                    act.state = None  # reload what the other replica committed
                    if binding.outcomes is not None:
                        binding.conflicts.inc()
            else:
                raise ConflictError(
                    f"{binding.kind}/{act.key}: state changed concurrently {self._max_retries + 1} times"
                )
        except Exception as exc:
            # Supervision: forget the in-memory state (the handler may have half-mutated it) and
            # restart from storage on the next message; the actor keeps serving.
            act.state = None
            outcome = "error"
            if reply_to is None:
                logger.error(
                    "actor %s/%s failed on %s",
                    binding.kind,
                    act.key,
                    type(envelope.message).__name__,
                    exc_info=exc,
                )
            elif not reply_to.done():
                reply_to.set_exception(exc)
            return False
        finally:
            if binding.outcomes is not None:
                binding.seconds.observe(time.perf_counter() - started)
                binding.outcomes[outcome].inc()
        if committed is None:
            if binding.outcomes is not None:
                binding.outcomes["skipped"].inc()
            if reply_to is not None and not reply_to.done():
                reply_to.set_result(None)
            return False
        act.state, act.version, act.saved_json = committed.state, committed.version, committed.saved_json
        if reply_to is not None and not reply_to.done():
            reply_to.set_result(committed.reply)
        return committed.stop

    async def _turn(self, act: _Activation, message: Any, *, lock: bool) -> _Committed | None:
        """One attempt, through the database's group commit: the turns of other activations
        waiting at the same moment share its transaction (`libs.store.group`).
        Returns once committed; None for a stale reminder (nothing to do)."""
        runs = 0

        async def unit(session: AsyncSession) -> _Committed | None:
            nonlocal runs
            runs += 1
            if runs > 1:
                # Run again alone after its group failed: what the first run loaded or changed
                # in memory was never committed.
                act.state = None
            return await self._run_turn(act, message, session, lock=lock)

        return await self._db.group.run(unit)

    async def _run_turn(
        self, act: _Activation, message: Any, session: AsyncSession, *, lock: bool
    ) -> _Committed | None:
        """The turn inside a given session; the batching seam (see the module docstring)."""
        binding, key = act.kind, act.key
        kind = binding.kind
        ids = {"b_kind": kind, "b_key": key}
        loaded = act.state is None
        if loaded:
            row = (await session.execute(_LOAD_LOCKED if lock else _LOAD, ids)).first()
            if row is None:
                state, version = binding.actor.initial_state(key), None
                saved_json = binding.codec.dump(state)
            else:
                state, version, saved_json = binding.codec.load(row.state_json), row.version, row.state_json
        else:
            state, version, saved_json = act.state, act.version, act.saved_json
        # Keep what was loaded (a skipped reminder turn then need not reload); any failure
        # resets act.state in `_handle`, and a commit replaces all three.
        act.state = state
        act.version, act.saved_json = version, saved_json

        if isinstance(message, Reminder) and message.token is not None:
            # Delete the firing first: if it was cancelled, re-set or already handled (another
            # replica, an earlier delivery), nothing matches and the handler must not see it.
            fired = await session.execute(
                _DELETE_FIRED, {**ids, "b_name": message.name, "b_token": message.token}
            )
            if fired.rowcount == 0:
                return None

        now = self._clock()
        turn: Turn[Any] = Turn(kind, key, state, session, now)
        reply = await binding.actor.receive(message, turn)

        if session.new or session.dirty or session.deleted:
            # Surface the handler's own ORM errors as its errors, not as a state conflict below.
            await session.flush()
        new_json = binding.codec.dump(turn.state)
        new_version = version
        if new_json != saved_json:
            if version is None:
                new_version = 1
                try:
                    await session.execute(
                        _INSERT_STATE, {**ids, "b_version": 1, "b_json": new_json, "b_now": now}
                    )
                except IntegrityError as exc:
                    raise _Conflict from exc  # another replica created the actor first
            else:
                new_version = version + 1
                result = await session.execute(
                    _UPDATE_STATE,
                    {**ids, "b_old": version, "b_version": new_version, "b_json": new_json, "b_now": now},
                )
                if result.rowcount != 1:
                    raise _Conflict
        elif not loaded:
            # Nothing to write, but the decision was made on cached state: make sure it is current.
            stored = (await session.execute(_VERSION, ids)).scalar_one_or_none()
            if stored != version:
                raise _Conflict

        for name, due_at, payload_json in turn._reminders:
            params = {**ids, "b_name": name}
            await session.execute(_DELETE_REMINDER, params)
            if due_at is not None:
                await session.execute(
                    _INSERT_REMINDER,
                    {**params, "b_due": due_at, "b_payload": payload_json, "b_token": uuid.uuid4().hex},
                )
        return _Committed(reply, turn.state, new_version, new_json, turn._stop)

    # -- reminders -------------------------------------------------------------------------------

    async def fire_due_reminders(self) -> int:
        """Claim the reminders due now (one batch) and deliver them; returns how many.

        The claim (a lease of `reminder_lease_s`) commits before delivery, so two replicas never
        deliver the same firing while the lease holds; the handling turn deletes the row.
        """
        now = self._clock()
        async with self._db.transaction() as session:
            result = await session.execute(
                _CLAIM_DUE_REMINDERS,
                {
                    "b_kinds": list(self._kinds),
                    "b_now": now,
                    "b_limit": self._reminder_batch,
                    "b_until": now + self._lease,
                },
            )
            rows = sorted(result.all(), key=lambda r: r.due_at)  # RETURNING has no order
        for r in rows:
            payload = None if r.payload_json is None else from_json(r.payload_json)
            reminder = Reminder(r.name, payload, r.due_at, r.token)
            binding = self._kinds[r.kind]
            if binding.outcomes is not None:
                binding.reminders.inc()
            # If the runtime stops now the lease lapses and the reminder fires again later.
            await self._send(r.kind, r.key, _Envelope(reminder, None))
        return len(rows)

    async def _poll_loop(self) -> None:
        assert self._poll_s is not None
        while True:
            try:
                claimed = await self.fire_due_reminders()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reminder poll failed")
                claimed = 0
            if claimed < self._reminder_batch:
                await asyncio.sleep(self._poll_s)


__all__ = ["ActorRef", "ActorRuntime", "Clock", "utc_now"]
