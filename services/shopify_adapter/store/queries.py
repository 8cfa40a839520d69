"""Dialect-aware statements the adapter needs: insert-if-absent decided by a unique constraint, upserts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import Compiled


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def insert_if_absent_statements(table: Any, key: list[str]) -> dict[str, Any]:
    """`INSERT ... ON CONFLICT (key) DO NOTHING` on `table`, by dialect name (`sqlite`,
    `postgresql`), as compiled statements (libs.store.Compiled): for hot paths, to build once and
    execute with each row's values (`result.rowcount` is 1 when the row was inserted). Atomic like
    `insert_if_absent`."""
    return {
        name: Compiled(dialect.insert(table).on_conflict_do_nothing(index_elements=key))
        for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
    }


async def insert_if_absent(session: AsyncSession, table: Any, values: dict[str, Any], key: list[str]) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING; True when the row was inserted.

    Atomic on both engines: two concurrent inserts of the same key cannot both succeed, and the
    loser does not fail its transaction.
    """
    statement = _insert(session, table).values(**values).on_conflict_do_nothing(index_elements=key)
    result = await session.execute(statement)
    return bool(result.rowcount)


async def upsert(session: AsyncSession, table: Any, values: dict[str, Any], key: list[str]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE with every non-key value."""
    statement = _insert(session, table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in key}
    await session.execute(statement.on_conflict_do_update(index_elements=key, set_=changes))
