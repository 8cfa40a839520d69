"""Group commit: the write units of concurrent callers share one transaction, a savepoint each.

A unit is a coroutine function of a session that does what one caller would otherwise do in its
own `Database.transaction()`: a consumer's inbox claim, handler and hop row, or an actor's turn.
Under load many callers wait for the writer at once (on SQLite the process has one writer; on
PostgreSQL each transaction pays its own round trips and WAL flush), so `GroupCommit` runs the units
waiting at that moment one after the other in one transaction and commits once:

- each unit runs inside its own SAVEPOINT: a unit that raises is rolled back alone and its caller
  gets the exception, while the others commit;
- every caller's `run` returns (or raises) only after the shared commit, so nothing is acked,
  answered or applied in memory before it is durable;
- if the shared transaction itself fails (the commit, or a failure that breaks the transaction
  instead of one savepoint), each unit of the group is run again alone in its own transaction, so
  one bad neighbour never fails the others;
- each unit runs in its caller's context (contextvars: the current span, the correlation id), so
  what it logs and emits carries its caller's trace, not the writer's.

A unit must not wait for anything another unit of the same process could hold (a lock taken
outside the transaction): the units of a group run one after the other, and SQLite's writer lock is
held throughout. Side effects outside the database belong after `run` returns. A unit may run more
than once (the re-run alone after a failed group), so it must not count on running once: it runs
in a fresh savepoint or transaction every time, so a database-only unit is safe.

The cost it saves per unit is the transaction's own: BEGIN, the commit's fsync and its hand-off to
a thread, the session. A savepoint costs two short statements. See
docs/decisions/0029-group-commit.md.
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
    group commit (`libs.store.group`) a unit whose savepoint rolls back drops its callbacks, while
    the others' run after the shared commit. Registering the same callback twice in one unit calls
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


class _GroupBroken(Exception):
    """The shared transaction cannot go on after a unit's failure."""


_PROBE = select(literal(1))


@dataclass
class _Unit(Generic[T]):
    work: Work[T]
    done: asyncio.Future[T]
    context: contextvars.Context
    urgent: bool
    result: Any = None
    error: BaseException | None = None
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
            work: the unit; it gets the shared session, inside its own savepoint.
            urgent: join the next group before every non-urgent unit, and take the writer lock as
                urgent (see `Database.transaction`).

        Raises:
            Whatever `work` raised (its savepoint rolled back, nothing of it committed), or the
            error of its own transaction when it had to run alone.
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
            urgent = any(unit.urgent for unit in group)
            if len(group) == 1:
                await self._alone(group[0], urgent)
                continue
            try:
                async with self.db.transaction(urgent=urgent) as session:
                    for unit in group:
                        await self._in_savepoint(session, unit)
            except BaseException as error:
                if isinstance(error, asyncio.CancelledError):
                    for unit in group:
                        _settle(unit, error=error)
                    raise
                # The shared transaction failed: nothing of it committed. Each unit on its own.
                self.stats.regrouped += 1
                for unit in group:
                    await self._alone(unit, urgent)
                continue
            self.stats.transactions += 1
            self.stats.units += len(group)
            for unit in group:
                if unit.error is None:
                    run_after_commit(unit.callbacks)
                _settle(unit, unit.result, error=unit.error)

    async def _in_savepoint(self, session: AsyncSession, unit: _Unit[Any]) -> None:
        unit.error = None
        # The unit's `after_commit` callbacks are its own: kept if its savepoint is released,
        # dropped with it if it rolls back.
        session.info[AFTER_COMMIT] = []
        savepoint = await session.begin_nested()
        try:
            unit.result = await _in_context(unit, session)
            await savepoint.commit()  # RELEASE SAVEPOINT (flushes first)
        except Exception as error:
            unit.error = error
            # This unit alone is rolled back (ROLLBACK TO SAVEPOINT), and the transaction must be
            # usable for the next unit. It is not when the savepoint could not be released (a unit
            # that caught a database error itself leaves PostgreSQL's transaction aborted, and
            # its savepoint is then gone from SQLAlchemy's view): then the whole group fails
            # and each unit runs again alone.
            try:
                if savepoint.is_active:
                    await savepoint.rollback()
                await session.execute(_PROBE)
            except Exception as broken:
                raise _GroupBroken(str(broken)) from broken
        unit.callbacks = session.info.pop(AFTER_COMMIT, []) if unit.error is None else []

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
    return await asyncio.create_task(unit.work(session), context=unit.context.copy())


def _settle(unit: _Unit[Any], result: Any = None, *, error: BaseException | None = None) -> None:
    if unit.done.done():
        return
    if isinstance(error, asyncio.CancelledError):
        unit.done.cancel()
    elif error is not None:
        unit.done.set_exception(error)
    else:
        unit.done.set_result(result)
