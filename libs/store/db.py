"""One database per service: an async engine, write transactions and read sessions.

SQLite is the embedded default. It has one writer per file, so every write transaction in the
process goes through one lock and opens with `BEGIN IMMEDIATE`: concurrent writers queue in the
process instead of failing with "database is locked" or upgrading a read lock into a deadlock.
Read sessions open with a plain (deferred) `BEGIN`: in WAL mode they read a snapshot and never
wait for the writer.
PostgreSQL takes concurrent writers and is what production and multi-replica services use.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, delete, event, inspect, select, tuple_
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import await_

from libs.store import inline
from libs.store.compiled import Compiled, Session
from libs.store.group import AFTER_COMMIT, GroupCommit, run_after_commit

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Execution option marking a write transaction's connection (SQLite: `BEGIN IMMEDIATE`).
_WRITE = "retail_write_transaction"


class Base(DeclarativeBase):
    """Declarative base for every table of every service and library."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalize_url(url: str | URL) -> URL:
    """Return `url` with an async driver: `sqlite://` → aiosqlite, `postgresql://` → asyncpg."""
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver != "aiosqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql" and driver != "asyncpg":
        return parsed.set(drivername="postgresql+asyncpg")
    return parsed


class Database:
    """An async engine with write transactions and read sessions.

    Args:
        url: SQLAlchemy URL; `sqlite:///path.db` or `postgresql://user@host/db` (async drivers are
            chosen automatically).
        sqlite_synchronous: SQLite `PRAGMA synchronous`; FULL keeps a committed outbox row through
            a power loss, NORMAL trades that for speed.
        pool_size: connections kept for PostgreSQL.
        sqlite_inline: run SQLite statements on the event loop's thread (`libs.store.inline`)
            instead of aiosqlite's worker thread, which costs several times the statement itself
            (decision 0028).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 10,
        sqlite_inline: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._write_lock = _writer_lock_for(self.url) if self.is_sqlite else None
        # `fetch`'s own sqlite3 connection: inline SQLite on a file (":memory:" is per connection).
        self._reader_path = (
            self.url.database
            if self.is_sqlite and sqlite_inline and self.url.database not in (None, "", ":memory:")
            else None
        )
        self._reader: sqlite3.Connection | None = None
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            connect_args: dict[str, Any] = {"timeout": 30}
            if sqlite_inline:
                connect_args["async_creator_fn"] = inline.connect
            self.engine: AsyncEngine = create_async_engine(self.url, connect_args=connect_args)
            _configure_sqlite(self.engine, sqlite_synchronous, inline=sqlite_inline)
        else:
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
        self.sessions = async_sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        self._writer_sessions = async_sessionmaker(
            self.engine, class_=Session, expire_on_commit=False, execution_options={_WRITE: True}
        )
        self._group: GroupCommit | None = None

    @property
    def group(self) -> GroupCommit:
        """The database's group commit (`libs.store.group`): write units of concurrent callers in
        shared transactions. One per `Database`, made on first use."""
        if self._group is None:
            self._group = GroupCommit(self)
        return self._group

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.url.get_backend_name()

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed on exit, rolled back on error.

        Args:
            urgent: on SQLite, go before every waiting writer that is not urgent (a webhook that
                must be stored before its 2xx, while background work queues for the writer).
        """
        if self._write_lock is None:
            async with self._writer_sessions() as session:
                async with session.begin():
                    yield session
                run_after_commit(session.info.pop(AFTER_COMMIT, []))
            return
        await self._write_lock.acquire(urgent=urgent)
        try:
            async with self._writer_sessions() as session:
                async with session.begin():
                    yield session
                callbacks = session.info.pop(AFTER_COMMIT, [])
        finally:
            self._write_lock.release()
        run_after_commit(callbacks)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; on SQLite (WAL) readers never wait for the writer."""
        async with self.sessions() as session:
            yield session

    async def fetch(self, statement: Compiled, params: Mapping[str, Any] | None = None) -> Any:
        """One `Compiled` read as a read of its own, its rows already fetched (`first`, `all`,
        `scalar`, `one_or_none`, ... on what is returned).

        On inline SQLite it runs straight on a sqlite3 connection of this `Database` kept for it,
        with no session: a read session costs about 100 µs around a statement of a few (decision
        0033). That connection is in autocommit mode, so a lone SELECT reads one committed WAL
        snapshot and holds nothing afterwards, like a read session that ends after one statement.
        Elsewhere (PostgreSQL, aiosqlite's thread) and for shapes `Compiled` leaves to SQLAlchemy,
        it runs in a read session. Like `read()`, it does not see the caller's uncommitted writes.
        """
        params = params or {}
        if self._reader_path is not None and isinstance(statement, Compiled):
            dialect = self.engine.dialect
            plan = statement._plan(dialect, frozenset(params))
            if plan is not None:
                return plan.run(self._reader or self._open_reader(), params, dialect)
        async with self.read() as session:
            result = await session.execute(statement, params)
            if not result.returns_rows:  # and the read session rolls it back
                raise ValueError("Database.fetch is for reads; write in Database.transaction()")
            return result.freeze()()

    def _open_reader(self) -> sqlite3.Connection:
        assert self._reader_path is not None
        reader = sqlite3.connect(self._reader_path, isolation_level=None, check_same_thread=False)
        reader.execute(f"PRAGMA busy_timeout={_INLINE_BUSY_TIMEOUT_MS}")
        reader.execute("PRAGMA query_only=ON")
        self._reader = reader
        return reader

    async def delete_in_batches(self, entity: Any, *where: Any, batch_size: int = 2000) -> int:
        """Delete the rows of `entity` matching `where`, `batch_size` at a time, each batch its own
        short transaction: a retention purge of an hour of a flash sale's rows never holds the
        writer (or, on SQLite, the event loop) for long. Returns how many rows were deleted."""
        key = tuple_(*inspect(entity).primary_key)
        deleted = 0
        while True:
            chosen = select(*inspect(entity).primary_key).where(*where).limit(batch_size)
            async with self.transaction() as session:
                result = await session.execute(delete(entity).where(key.in_(chosen)))
            count = result.rowcount or 0
            deleted += count
            if count < batch_size:
                return deleted
            await asyncio.sleep(0)  # let waiting writers and the loop's other work go first

    async def dispose(self) -> None:
        """Close every pooled connection (and log what the group commit did, if it was used)."""
        if self._group is not None and self._group.stats.units:
            stats = self._group.stats
            log.info(
                "group commit: %d units in %d transactions (%.1f per transaction), %d groups split",
                stats.units,
                stats.transactions,
                stats.units / max(1, stats.transactions),
                stats.regrouped,
            )
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self.engine.dispose()


class WriterLock:
    """The SQLite writer lock of one process: first come, first served, except that urgent
    waiters are served before the others. One per database file in a process, shared by every
    `Database` on that file (two replicas in one test process, a tool beside a service)."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the lock (see the class docstring)."""
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as we were cancelled: pass it on
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter (urgent first), or free it."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes; _held stays True
                    return
        self._held = False


_WRITER_LOCKS: weakref.WeakValueDictionary[str, WriterLock] = weakref.WeakValueDictionary()


def _writer_lock_for(url: URL) -> WriterLock:
    if not url.database or url.database == ":memory:":
        return WriterLock()
    key = str(Path(url.database).resolve())
    lock = _WRITER_LOCKS.get(key)
    if lock is None:
        lock = _WRITER_LOCKS[key] = WriterLock()
    return lock


#: Inline statements never wait long inside SQLite: a writer of another process (the only one
#: the process's WriterLock does not queue) is waited for in `BEGIN IMMEDIATE` retries that
#: sleep on the event loop.
_INLINE_BUSY_TIMEOUT_MS = 100
_BEGIN_RETRY_S = 0.02
_BEGIN_PATIENCE_S = 30.0


def _configure_sqlite(engine: AsyncEngine, synchronous: str, *, inline: bool) -> None:
    """WAL, a busy timeout and `BEGIN IMMEDIATE`, following SQLAlchemy's pysqlite recipe."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions defer the lock).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={_INLINE_BUSY_TIMEOUT_MS if inline else 30000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front; readers take none (a WAL snapshot).
        write = connection.get_execution_options().get(_WRITE, False)
        if not inline:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            return
        # Straight to sqlite3, as every statement of a read session first pays for this one: through
        # SQLAlchemy's execution machinery it costs more than the read itself.
        raw = connection.connection.driver_connection._live()
        if not write:
            raw.execute("BEGIN")
            return
        give_up = time.monotonic() + _BEGIN_PATIENCE_S
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > give_up:
                    raise
            await_(asyncio.sleep(_BEGIN_RETRY_S))  # another process writes: sleep on the loop, not in SQLite
