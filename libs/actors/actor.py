"""What an actor author writes against: `Actor`, the per-message `Turn`, `Reminder` and errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

S = TypeVar("S")

MAX_REMINDER_NAME = 200


class ActorError(Exception):
    """Base class of the runtime's own errors."""


class ConflictError(ActorError):
    """The actor's stored state kept changing under this turn (another replica); retries ran out."""


class RuntimeStoppedError(ActorError):
    """The runtime is not running (not started, stopping or stopped): the message was not taken."""


@dataclass(frozen=True, slots=True)
class Reminder:
    """The message a durable reminder delivers to its actor.

    Attributes:
        name: the name given to `Turn.set_reminder`; unique per actor.
        payload: the payload given to `set_reminder`, as JSON values (dicts, lists, str, ...).
        due_at: when it was due (UTC).
        token: identifies this setting of the reminder; the runtime uses it to tell a live
            firing from one that was cancelled or re-set after it was claimed.
    """

    name: str
    payload: Any = None
    due_at: datetime | None = None
    token: str | None = field(default=None, repr=False, compare=False)


class Actor(Generic[S]):
    """A kind of keyed actor: one handler object per kind, state per key.

    Subclasses set `kind` and `state_type` and implement `receive`. The runtime keeps one
    instance per kind and passes each key's state in the `Turn`, so per-key data belongs in
    `ctx.state`, never on `self` (which is the place for collaborators, e.g. an outbox).

    `state_type` is a pydantic model (recommended) or any type pydantic can validate (a
    dataclass, `dict[str, int]`); it is stored as JSON.

    Example:
        class CounterActor(Actor[Counter]):
            kind = "counter"
            state_type = Counter

            async def receive(self, message, ctx):
                ctx.state.value += message.by
                return ctx.state.value
    """

    kind: ClassVar[str]
    state_type: ClassVar[Any]

    def initial_state(self, key: str) -> S:
        """The state of an actor that has never been saved; by default `state_type()`."""
        return self.state_type()

    async def receive(self, message: Any, ctx: Turn[S]) -> Any:
        """Handle one message; the return value is the `ask` reply.

        Raising rolls the whole turn back (state, reminders and everything written through
        `ctx.session`) and hands the exception to the caller; the actor keeps serving from its
        stored state.
        """
        raise NotImplementedError


class StateCodec:
    """State to JSON text and back, resolved once per kind so the hot path does no reflection."""

    __slots__ = ("dump", "load")

    def __init__(self, state_type: Any) -> None:
        self.dump: Callable[[Any], str]
        self.load: Callable[[str], Any]
        if isinstance(state_type, type) and issubclass(state_type, BaseModel):
            self.dump = state_type.model_dump_json
            self.load = state_type.model_validate_json
        else:
            adapter = TypeAdapter(state_type)
            self.dump = lambda state: adapter.dump_json(state).decode()
            self.load = adapter.validate_json


class Turn(Generic[S]):
    """What a handler gets for one message: key, mutable state, the transaction, time, reminders.

    Attributes:
        kind: the actor kind.
        key: the actor key.
        state: the actor's state; mutate it or assign a new value. Saved when the turn ends.
        session: the session of the turn's one write transaction. Write outbox rows and the
            actor's own tables here so they commit, or roll back, together with the state (M1).
    """

    __slots__ = ("_now", "_reminders", "_stop", "key", "kind", "session", "state")

    def __init__(self, kind: str, key: str, state: S, session: AsyncSession, now: datetime) -> None:
        self.kind = kind
        self.key = key
        self.state = state
        self.session = session
        self._now = now
        # (name, due_at or None to cancel, payload_json) in call order; applied after the state is saved.
        self._reminders: list[tuple[str, datetime | None, str | None]] = []
        self._stop = False

    def now(self) -> datetime:
        """The turn's time (UTC, from the runtime's clock, fixed for the whole turn)."""
        return self._now

    def set_reminder(
        self,
        name: str,
        *,
        due_in: timedelta | float | None = None,
        due_at: datetime | None = None,
        payload: Any = None,
    ) -> None:
        """Set (or replace) the durable reminder `name`; it arrives later as a `Reminder` message.

        Written in this turn's transaction: it exists only if the turn commits, and survives
        restarts. Delivery is at least once; the turn that handles it deletes it, so a handler
        that commits sees each setting once.

        Args:
            name: unique per actor; setting it again replaces the previous one.
            due_in: delay from `now()`, a timedelta or seconds.
            due_at: absolute time instead of `due_in`.
            payload: JSON-serializable data handed back in `Reminder.payload`.

        Raises:
            ValueError: not exactly one of `due_in` and `due_at`, or a bad name.
        """
        if (due_in is None) == (due_at is None):
            raise ValueError("give exactly one of due_in and due_at")
        if not name or len(name) > MAX_REMINDER_NAME:
            raise ValueError(f"reminder name must have 1 to {MAX_REMINDER_NAME} characters")
        if due_at is None:
            delay = due_in if isinstance(due_in, timedelta) else timedelta(seconds=float(due_in))  # type: ignore[arg-type]
            due_at = self._now + delay
        payload_json = None if payload is None else to_json(payload).decode()
        self._reminders.append((name, due_at, payload_json))

    def cancel_reminder(self, name: str) -> None:
        """Cancel the reminder `name` if it exists (in this turn's transaction)."""
        self._reminders.append((name, None, None))

    def stop(self) -> None:
        """Deactivate the actor after this turn; the next message activates it from storage."""
        self._stop = True
