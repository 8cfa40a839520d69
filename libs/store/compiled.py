"""Core statements built once, compiled once, and run straight on a service's own SQLite file.

A Core statement passed to `session.execute` still pays SQLAlchemy's execution machinery every
time: the compiled-cache look-up, an execution context, parameter and result processing through
generic paths. Measured on the bench machine in one SQLite transaction: 37-45 µs per statement
that way, 4-7 µs compiled once and run on the sqlite3 connection; inside the services under load,
100-250 µs per statement, a sixth of their CPU (decision 0032).

`Compiled(statement)` wraps a statement a module builds once. Executed through a session of
`libs.store.Database` (`session.execute(STATEMENT, params)`, `scalar`, `scalars`), it runs:
- on SQLite with inline statements (the embedded default): compiled once per set of parameter
  names, with SQLAlchemy's own bind and result processors of the columns it touches, straight on
  the transaction's sqlite3 connection; sqlite3 errors come back as SQLAlchemy's exceptions
  (`IntegrityError` and so on), pending ORM changes are flushed first, as autoflush would; an `IN`
  of values written into the statement (`status.in_(["a", "b"])`) is expanded once, at compile time;
- everywhere else (PostgreSQL, aiosqlite's own thread), and for shapes this path does not cover
  (Python-side column defaults, expanding `IN` parameters given per call, several parameter sets
  with different names or with rows to return): as the plain statement through SQLAlchemy,
  unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable

from libs.store.inline import InlineConnection

#: `session.info` key of the (transaction, sqlite3 connection) the session's statements run on.
_RAW = "libs.store.compiled.raw"
_MISSING = object()


class Compiled:
    """A statement built once; see the module docstring.

    Args:
        statement: a Core `select`, `insert`, `update` or `delete` (with or without `returning`).
    """

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[frozenset[str], _Plan | None] = {}

    def __repr__(self) -> str:
        return f"Compiled({self.statement})"

    def _plan(self, dialect: Any, names: frozenset[str]) -> _Plan | None:
        try:
            return self._plans[names]
        except KeyError:
            plan = self._plans[names] = _Plan.compile(self.statement, dialect, names)
            return plan


class Result(IteratorResult[Any]):
    """What a compiled statement returns on the sqlite3 path: SQLAlchemy's `Result` API (`first`,
    `all`, `scalar`, `scalars`, `one_or_none`, `mappings`, ...) plus `rowcount`."""

    def __init__(self, metadata: SimpleResultMetaData, rows: Sequence[Any], rowcount: int) -> None:
        super().__init__(metadata, iter(rows))
        self.rowcount = rowcount


_NO_COLUMNS = SimpleResultMetaData([])


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    #: per positional parameter: its name, its bind processor, the statement's own value (or _MISSING)
    binds: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
    columns: SimpleResultMetaData | None

    @staticmethod
    def compile(statement: Executable, dialect: Any, names: frozenset[str]) -> _Plan | None:
        """The sqlite3 plan of `statement` given parameters `names`, or None where SQLAlchemy must run it."""
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            return None
        compiled = statement.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
            or compiled.positiontup is None
        ):
            return None
        sql, positions = compiled.string, compiled.positiontup
        processors = compiled._bind_processors
        expanded_values: dict[str, Any] = {}
        if compiled.post_compile_params:
            # An IN of values written into the statement expands the same way every time: expand
            # it once here (SQLAlchemy's own expansion, as each execution would). An expanding
            # parameter given per call cannot be.
            literal = {
                compiled.bind_names[bind]: bind.value
                for bind in compiled.post_compile_params
                if not bind.required and bind.callable is None and bind.key not in names
            }
            if len(literal) != len(compiled.post_compile_params):
                return None
            expanded = compiled._process_parameters_for_postcompile(literal, _populate_self=False)
            sql, positions = expanded.statement, expanded.positiontup
            processors = {**processors, **expanded.processors}
            expanded_values = expanded.parameters
        binds = []
        for name in positions:
            if name in expanded_values:
                binds.append((name, processors.get(name), expanded_values[name]))
                continue
            bind = compiled.binds[name]
            if bind.callable is not None:
                return None
            own = _MISSING if bind.required or (name in names) else bind.value
            binds.append((name, processors.get(name), own))
        columns = None
        if compiled._result_columns:
            result_processors = [
                column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
            ]
            columns = SimpleResultMetaData(
                [column.keyname for column in compiled._result_columns], _processors=result_processors
            )
        return _Plan(sql, tuple(binds), columns)

    def run(
        self, raw: sqlite3.Connection, params: Mapping[str, Any] | list[Mapping[str, Any]], dialect: Any
    ) -> Result:
        """Run on `raw` with one parameter set, or several (then without rows to return)."""
        many = isinstance(params, list)
        values: Any = [self.parameters(p) for p in params] if many else self.parameters(params)
        try:
            if many:
                cursor, rows = raw.executemany(self.sql, values), ()
            else:
                cursor = raw.execute(self.sql, values)
                rows = cursor.fetchall() if self.columns is not None else ()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(self.sql, values, error, sqlite3.Error, dialect=dialect) from error
        return Result(self.columns or _NO_COLUMNS, rows, cursor.rowcount)

    def parameters(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, process, own in self.binds:
            value = params.get(name, own)
            if value is _MISSING:
                raise exc.StatementError(
                    f"A value is required for bind parameter {name!r}", self.sql, dict(params), None
                )
            values.append(process(value) if process is not None else value)
        return tuple(values)


class Session(AsyncSession):
    """The sessions of `libs.store.Database`: `AsyncSession` that also runs `Compiled` statements."""

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if type(statement) is Compiled:
            if kwargs or not (params is None or isinstance(params, (Mapping, list))):
                return await super().execute(statement.statement, params, **kwargs)
            return await self._run_compiled(statement, params or {})
        return await super().execute(statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if type(statement) is Compiled:
            return (await self.execute(statement, params, **kwargs)).scalar()
        return await super().scalar(statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if type(statement) is Compiled:
            return (await self.execute(statement, params, **kwargs)).scalars()
        return await super().scalars(statement, params, **kwargs)

    async def _run_compiled(
        self, statement: Compiled, params: Mapping[str, Any] | list[Mapping[str, Any]]
    ) -> Any:
        many = isinstance(params, list)
        keys = [frozenset(p) for p in params] if many else [frozenset(params)]
        # Several parameter sets run on sqlite3 only with one set of names and no rows to return.
        same = bool(keys) and all(k == keys[0] for k in keys)
        dialect = self.bind.dialect
        plan = statement._plan(dialect, keys[0]) if same else None
        raw = await self._sqlite3() if plan is not None and not (many and plan.columns is not None) else None
        if plan is None or raw is None:
            return await super().execute(statement.statement, params)
        return plan.run(raw, params, dialect)

    async def _sqlite3(self) -> sqlite3.Connection | None:
        """The sqlite3 connection of this session's transaction (begun if need be), after flushing
        pending ORM changes; None when the session is not on an inline SQLite connection."""
        sync = self.sync_session
        if sync._new or sync._deleted or sync.identity_map._modified:
            await self.flush()
        cached = self.info.get(_RAW)
        if cached is not None and cached[0] is sync.get_transaction():
            return cached[1]
        connection = await self.connection()  # begins the transaction if none is open
        driver = (await connection.get_raw_connection()).driver_connection
        raw = driver._live() if isinstance(driver, InlineConnection) else None
        self.info[_RAW] = (sync.get_transaction(), raw)
        return raw
