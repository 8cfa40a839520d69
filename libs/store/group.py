"""Group commit: the write units of concurrent callers share one transaction.

A unit is a coroutine function of a session that does what one caller would otherwise do in its
own `Database.transaction()`: a consumer's inbox claim, handler and hop row, or an actor's turn.
Under load many callers wait for the writer at once (on SQLite the process has one writer; on
PostgreSQL each transaction pays its own round trips and WAL flush), so `GroupCommit` runs the units
waiting at that moment one after the other in one transaction and commits once:

- every caller's `run` returns (or raises) only after the commit that holds its unit, so nothing is
  acked, answered or applied in memory before it is durable;
- a unit that raises never commits and never costs its neighbours theirs: the group's transaction
  is rolled back, the units before it run again together, it runs again alone in a transaction of
  its own (its caller gets the error of that run), and the units after it together. Units seldom
  fail (a redelivered event, a conflict between replicas), so the group pays no savepoint per
  unit for them; a failure costs a second run of its neighbours;
- if the commit itself fails, each unit of the group runs again alone;
- each unit runs in its caller's context (contextvars: the current span, the correlation id), so
  what it logs and emits carries its caller's trace, not the writer's.

A unit must not wait for anything another unit of the same process could hold (a lock taken
outside the transaction): the units of a group run one after the other, and SQLite's writer lock is
held throughout. Side effects outside the database belong after `run` returns, or in
`after_commit`. A unit may run more than once (after a neighbour's failure), in a fresh transaction
every time, so it must build its work from the session it is given and not count on running once
(an actor turn reloads its state on a second run).

The cost it saves per unit is the transaction's own: BEGIN, the commit's fsync and its hand-off to
a thread, the session. See docs/decisions/0029-group-commit.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from libs.store.db import Database


log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]


#: `session.info` key of the callbacks `after_commit` registered for the current unit of work.
AFTER_COMMIT = "retail.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback()` once the writes made so far in `session` are committed.

    Unlike SQLAlchemy's `after_commit` session event, this is scoped to the unit of work: under
    group commit (`libs.store.group`) a run of a unit that does not commit drops its callbacks,
    and each committed unit's run after the commit. Registering the same callback twice in one unit calls
    it once. For nudges and follow-ups that must only happen for committed work (wake a relay,
    tell an actor, start a call whose request was just stored).
    """
    callbacks: list[Callable[[], None]] = session.info.setdefault(AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """Run committed callbacks; one that raises is logged and does not stop the others."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("after-commit callback failed")


_ALIVE = select(literal(1))


class UnitCancelledError(Exception):
    """A unit's own work was cancelled (not the group's writer): its caller gets this."""


@dataclass
class _Unit(Generic[T]):
    work: Work[T]
    done: asyncio.Future[T]
    context: contextvars.Context
    urgent: bool
    result: Any = None
    callbacks: list[Callable[[], None]] = field(default_factory=list)


class GroupStats:
    """Counts for tests and benchmarks: transactions committed and units they carried."""

    def __init__(self) -> None:
        self.transactions = 0
        self.units = 0
        self.regrouped = 0  # groups whose shared transaction failed and whose units ran alone

    def __repr__(self) -> str:
        return f"GroupStats(transactions={self.transactions}, units={self.units}, regrouped={self.regrouped})"


class GroupCommit:
    """Runs write units of concurrent callers in shared transactions (see the module docstring).

    Args:
        db: the database the units write.
        max_units: units per transaction at most; a long group holds the writer (and its callers'
            answers) for longer.
        writers: groups in flight at once. One by default: on SQLite the process has one writer
            anyway, and on PostgreSQL two groups of one process that lock the same rows in a
            different order (two consumers' inbox rows of one event) deadlock, which the server
            breaks only after `deadlock_timeout` by failing a unit. More only for units known to
            write disjoint rows.
    """

    def __init__(self, db: Database, *, max_units: int = 64, writers: int = 1) -> None:
        self.db = db
        self.max_units = max_units
        self.writers = writers
        self.stats = GroupStats()
        self._urgent: deque[_Unit[Any]] = deque()
        self._normal: deque[_Unit[Any]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing = 0  # writers whose loop has not ended (a finished task leaves _tasks later)

    async def run(self, work: Work[T], *, urgent: bool = False) -> T:
        """Run `work(session)` in the next shared transaction; returns its result once committed.

        Args:
            work: the unit; it gets the shared session.
            urgent: join the next group before every non-urgent unit, and take the writer lock as
                urgent (see `Database.transaction`).

        Raises:
            Whatever `work` raised when it ran alone in its own transaction (nothing of it
            committed), or that transaction's error.
        """
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop.create_future(), contextvars.copy_context(), urgent)
        (self._urgent if urgent else self._normal).append(unit)
        if self._writing < self.writers:
            self._writing += 1
            task = asyncio.create_task(self._write(), name="group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a caller that goes away must not cancel the commit its neighbours wait for.
        return await asyncio.shield(unit.done)

    def _take(self) -> list[_Unit[Any]]:
        group: list[_Unit[Any]] = []
        for queue in (self._urgent, self._normal):
            while queue and len(group) < self.max_units:
                group.append(queue.popleft())
        return group

    async def _write(self) -> None:
        try:
            await self._drain()
        finally:
            # No await between the queue found empty and this: a unit queued from now on starts
            # a writer of its own.
            self._writing -= 1

    async def _drain(self) -> None:
        while self._urgent or self._normal:
            group = self._take()
            await self._group(group, any(unit.urgent for unit in group))

    async def _group(self, group: list[_Unit[Any]], urgent: bool) -> None:
        """Run `group` in one transaction; on a unit's failure, roll back and split (see below)."""
        if not group:
            return
        if len(group) == 1:
            await self._alone(group[0], urgent)
            return
        failed: int | None = None
        try:
            async with self.db.transaction(urgent=urgent) as session:
                for index, unit in enumerate(group):
                    # The unit's `after_commit` callbacks are its own, run once it is committed.
                    session.info[AFTER_COMMIT] = []
                    try:
                        unit.result = await _in_context(unit, session)
                        await session.flush()  # its writes fail as its own, not as the next unit's
                    except Exception:
                        failed = index
                        raise
                    unit.callbacks = session.info.pop(AFTER_COMMIT, [])
                if not self.db.is_sqlite:
                    # A unit that caught a database error itself leaves PostgreSQL's transaction
                    # aborted, and COMMIT then rolls back without an error: every neighbour would be
                    # answered for work that is gone. A statement fails in that state.
                    await session.execute(_ALIVE)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                for unit in group:
                    _settle(unit, error=error)
                raise
            # Nothing of the group committed. A unit failed: the ones before it run again together,
            # it runs alone (its caller gets its own error from its own transaction), and the
            # ones after it together. The commit itself failed: each unit alone.
            self.stats.regrouped += 1
            if failed is None:
                for unit in group:
                    await self._alone(unit, urgent)
                return
            await self._group(group[:failed], urgent)
            await self._alone(group[failed], urgent)
            await self._group(group[failed + 1 :], urgent)
            return
        self.stats.transactions += 1
        self.stats.units += len(group)
        for unit in group:
            run_after_commit(unit.callbacks)
            _settle(unit, unit.result)

    async def _alone(self, unit: _Unit[Any], urgent: bool) -> None:
        try:
            async with self.db.transaction(urgent=urgent) as session:
                result = await _in_context(unit, session)
        except asyncio.CancelledError as error:
            _settle(unit, error=error)
            raise
        except Exception as error:
            _settle(unit, error=error)
            return
        self.stats.transactions += 1
        self.stats.units += 1
        _settle(unit, result)


async def _in_context(unit: _Unit[T], session: AsyncSession) -> T:
    """Run the unit as a task in its caller's context (span, correlation id, logging fields)."""
    task = asyncio.create_task(unit.work(session), context=unit.context.copy())
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the writer itself is being cancelled (shutdown)
        # The unit let a cancellation out (it awaited something that was cancelled): a failure of
        # that unit like any other, not of the group or the writer.
        raise UnitCancelledError(f"unit cancelled: {unit.work!r}") from None


def _settle(unit: _Unit[Any], result: Any = None, *, error: BaseException | None = None) -> None:
    if unit.done.done():
        return
    if isinstance(error, asyncio.CancelledError):
        unit.done.cancel()
    elif error is not None:
        unit.done.set_exception(error)
    else:
        unit.done.set_result(result)
