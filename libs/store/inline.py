"""SQLite statements run on the event loop's own thread, for SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a worker thread and hands the
answer back through the event loop: measured here, about 75 µs of CPU per round trip and four
round trips per statement, against 2 µs for the statement itself (decision 0028). A service's
SQLite file is written by that process only (the writer lock in `db.py` queues its writers, WAL
readers never wait), so a statement does not wait for a lock and running it inline costs less than
handing it to a thread. SQLAlchemy's dialect accepts such a connection through its documented
`async_creator_fn` connect argument; this module provides the few awaitable methods the dialect's
adapter calls, each doing its sqlite3 call at once.

A commit waits for the disk (fsync, with `synchronous=FULL`), so it alone goes to a worker thread:
one hand-off per transaction instead of four per statement, and the loop keeps working during the
fsync. Anything else that runs long (a big scan or purge) blocks the loop while it runs: keep such
work out of request paths and in batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


class InlineCursor:
    """The awaitable cursor surface SQLAlchemy's asyncio adapter uses, over a sqlite3 cursor."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(operation, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None

    def __aiter__(self) -> InlineCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _CursorOpening:
    """What `connection.cursor()` returns: entered with `async with` or awaited."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._connection.cursor())

    async def __aexit__(self, *_exc: object) -> None:
        return None

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class _Now:
    """Stands in for aiosqlite's call queue: the dialect sets the isolation level through it."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except BaseException as error:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(error)


class InlineConnection:
    """The awaitable connection surface of aiosqlite that SQLAlchemy's dialect uses.

    Attributes `_conn`, `_connection` and `_tx` are the names the dialect reaches for.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._tx = _Now()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    def cursor(self) -> _CursorOpening:
        return _CursorOpening(self._live())

    async def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        return InlineCursor(self._live().execute(operation, parameters))

    async def commit(self) -> None:
        # The one call that waits for the disk (fsync with synchronous=FULL): off the loop, so
        # the process keeps working meanwhile; the writer lock stays held until it returns.
        connection = self._live()
        if connection.in_transaction:
            await asyncio.get_running_loop().run_in_executor(None, connection.commit)

    async def rollback(self) -> None:
        self._live().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Close now (SQLAlchemy's forced terminate)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def connect(database: str, **kwargs: Any) -> InlineConnection:
    """Open `database` (`async_creator_fn` of the aiosqlite dialect). Its calls come one at a time
    from the loop's thread, and commits from a worker thread while the loop waits for them."""
    kwargs["check_same_thread"] = False
    return InlineConnection(sqlite3.connect(database, **kwargs))
