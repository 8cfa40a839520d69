"""libs.store.Compiled on SQLite (the sqlite3 path) and PostgreSQL (SQLAlchemy's): the same values
and errors as the plain statement, inside the session's transaction."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.store import Compiled, Database
from tests.integration.store.helpers import with_tables


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class _Base(DeclarativeBase):
    pass


class Thing(_Base):
    __tablename__ = "compiled_thing"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    n: Mapped[int | None] = mapped_column(sa.Integer)
    doc: Mapped[dict | None] = mapped_column(sa.JSON)
    at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    flag: Mapped[bool | None] = mapped_column(sa.Boolean)
    blob: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    colour: Mapped[Colour | None] = mapped_column(sa.Enum(Colour, native_enum=False, length=8))
    note: Mapped[str] = mapped_column(sa.String(16), default="none")


T = Thing.__table__
INSERT = Compiled(insert(T))
ONE = Compiled(
    select(T.c.id, T.c.n, T.c.doc, T.c.at, T.c.flag, T.c.blob, T.c.colour).where(T.c.id == bindparam("b_id"))
)
LARGE = Compiled(select(T.c.id).where(T.c.n > 5, T.c.flag.is_(True)).order_by(T.c.id).limit(2))
BUMP = Compiled(update(T).where(T.c.id == bindparam("b_id")).values(n=T.c.n + 1))
SET_N = Compiled(update(T).where(T.c.id == bindparam("b_id")))
DROP = Compiled(delete(T).where(T.c.n >= bindparam("b_min")))
COUNT = Compiled(select(func.count()).select_from(T))
ANY_OF = Compiled(select(T.c.id).where(T.c.id.in_(bindparam("b_ids", expanding=True))).order_by(T.c.id))
#: IN lists written into the statement: values that need a bind processor (enum, datetime) and not.
IN_LITERALS = Compiled(
    select(T.c.id)
    .where(
        T.c.colour.in_([Colour.RED, Colour.BLUE]),
        T.c.at.in_([datetime(2026, 11, 29, 4, 5, 6, 789000, tzinfo=UTC)]),
    )
    .where(T.c.note.in_(["x", "y"]), T.c.n >= bindparam("b_min"))
    .order_by(T.c.id)
)

AT = datetime(2026, 11, 29, 4, 5, 6, 789000, tzinfo=UTC)
ROW = {
    "id": "a",
    "n": 7,
    "doc": {"lines": [1, 2], "note": "é"},
    "at": AT,
    "flag": True,
    "blob": b"\x00\x01",
    "colour": Colour.BLUE,
    "note": "x",
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with with_tables(database_url, _Base) as database:
        yield database


class _Statements:
    """SQL that reached SQLAlchemy's cursor execution (the sqlite3 path never does)."""

    def __init__(self, db: Database) -> None:
        self.seen: list[str] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_rest) -> None:
        self.seen.append(statement)

    def of(self, table: str = "compiled_thing") -> list[str]:
        return [s for s in self.seen if table in s]


async def test_values_round_trip_as_through_sqlalchemy(db: Database):
    plain = {**ROW, "id": "b"}
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)
        await session.execute(insert(T), plain)
    async with db.read() as session:
        mine = (await session.execute(ONE, {"b_id": "a"})).one()
        theirs = (await session.execute(ONE.statement, {"b_id": "b"})).one()
    assert mine._mapping == {**theirs._mapping, "id": "a"}
    assert mine.doc == ROW["doc"] and mine.blob == b"\x00\x01" and mine.colour is Colour.BLUE
    assert mine.flag is True and mine.n == 7
    assert mine.at.replace(tzinfo=UTC) == AT  # SQLite keeps no zone; PostgreSQL gives it back


async def test_result_api_and_rowcounts(db: Database):
    async with db.transaction() as session:
        for n, key in enumerate("abcd"):
            await session.execute(INSERT, {**ROW, "id": key, "n": 4 + n})
        assert (await session.execute(LARGE)).scalars().all() == ["c", "d"]
        assert await session.scalar(COUNT) == 4
        assert (await session.scalars(LARGE)).all() == ["c", "d"]
        assert (await session.execute(ONE, {"b_id": "zz"})).first() is None
        assert (await session.execute(ONE, {"b_id": "zz"})).one_or_none() is None
        assert (await session.execute(BUMP, {"b_id": "a"})).rowcount == 1
        assert (await session.execute(BUMP, {"b_id": "zz"})).rowcount == 0
        assert (await session.execute(SET_N, {"b_id": "b", "n": 40})).rowcount == 1
        await session.execute(SET_N, [{"b_id": "c", "n": 60}, {"b_id": "d", "n": 70}])
        assert (await session.execute(DROP, {"b_min": 7})).rowcount == 3
        rows = (await session.execute(ONE, {"b_id": "a"})).mappings().all()
    assert [r["n"] for r in rows] == [5]
    async with db.read() as session:
        assert (await session.execute(select(T.c.id, T.c.n))).all() == [("a", 5)]


async def test_sqlite_runs_them_on_sqlite3_and_falls_back_where_it_must(db: Database):
    statements = _Statements(db)
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)
        await session.execute(INSERT, {**ROW, "id": "b"})
        await session.execute(SET_N, [{"b_id": "a", "n": 1}, {"b_id": "b", "n": 2}])  # executemany
        await session.execute(insert(T), {"id": "c"})  # plain statement: SQLAlchemy
        defaulted = Compiled(insert(T))
        await session.execute(defaulted, {"id": "d"})  # `note` has a Python default: SQLAlchemy
        ids = (await session.execute(ANY_OF, {"b_ids": ["a", "d"]})).scalars().all()  # expanding: SQLAlchemy
        note = (await session.execute(select(T.c.note).where(T.c.id == "d"))).scalar_one()
    assert ids == ["a", "d"] and note == "none"
    if db.is_sqlite:
        inserts = [s for s in statements.of() if s.startswith("INSERT")]
        assert len(inserts) == 2, inserts  # "c" and "d" only
        assert any(" IN (" in s for s in statements.of())
        assert not [s for s in statements.of() if s.startswith("UPDATE")]
    else:
        assert len([s for s in statements.of() if s.startswith("INSERT")]) == 4


async def test_an_in_of_values_written_into_the_statement_runs_on_sqlite3(db: Database):
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)  # BLUE, AT, note "x", n 7
        await session.execute(INSERT, {**ROW, "id": "b", "colour": Colour.RED, "n": 3})
        await session.execute(INSERT, {**ROW, "id": "c", "note": "z"})
        await session.execute(INSERT, {**ROW, "id": "d", "at": AT.replace(year=2025)})
    statements = _Statements(db)
    async with db.read() as session:
        mine = (await session.execute(IN_LITERALS, {"b_min": 3})).scalars().all()
        again = (await session.execute(IN_LITERALS, {"b_min": 5})).scalars().all()
        theirs = (await session.execute(IN_LITERALS.statement, {"b_min": 3})).scalars().all()
    fetched = (await db.fetch(IN_LITERALS, {"b_min": 3})).scalars().all()
    assert mine == theirs == fetched == ["a", "b"]
    assert again == ["a"]
    if db.is_sqlite:
        assert len(statements.of()) == 1  # only the plain statement reached SQLAlchemy's cursor


async def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(db: Database):
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(INSERT, {**ROW, "id": "fresh"})
            await session.execute(INSERT, ROW)
    with pytest.raises(StatementError, match="b_id"):
        async with db.transaction() as session:
            await session.execute(ONE, {})
    async with db.read() as session:
        assert await session.scalar(COUNT) == 1  # "fresh" went with its transaction


async def test_pending_orm_changes_are_flushed_first(db: Database):
    async with db.transaction() as session:
        session.add(Thing(id="orm", n=1))
        assert (await session.execute(ONE, {"b_id": "orm"})).one().n == 1
        (await session.get(Thing, "orm")).n = 2
        assert (await session.execute(ONE, {"b_id": "orm"})).one().n == 2


async def test_a_session_with_several_transactions_uses_each_ones_connection(db: Database):
    async with db.read() as session:
        assert await session.scalar(COUNT) == 0
        await session.commit()
        async with db.transaction() as writer:
            await writer.execute(INSERT, ROW)
        assert await session.scalar(COUNT) == 1  # a new transaction, a new snapshot


async def test_fetch_reads_committed_rows_without_a_session(db: Database):
    statements = _Statements(db)
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)
        # fetch is a read of its own: it does not see the open transaction's writes
        assert (await db.fetch(ONE, {"b_id": "a"})).first() is None
    fetched = (await db.fetch(ONE, {"b_id": "a"})).one()
    async with db.read() as session:
        read = (await session.execute(ONE.statement, {"b_id": "a"})).one()
    assert fetched._mapping == read._mapping and fetched.colour is Colour.BLUE
    assert (await db.fetch(COUNT)).scalar() == 1
    assert (await db.fetch(LARGE)).scalars().all() == ["a"]
    assert (await db.fetch(ANY_OF, {"b_ids": ["a", "zz"]})).scalars().all() == ["a"]  # expanding
    with pytest.raises(StatementError, match="b_id"):
        await db.fetch(ONE, {})
    if db.is_sqlite:
        # only the expanding IN went through SQLAlchemy; the rest ran on fetch's own connection
        assert [s for s in statements.of() if s.startswith("SELECT")] == [
            s for s in statements.of() if " IN (" in s or s == read_sql(db)
        ]
        assert db._reader is not None  # mutation check: the sqlite3 path was taken


def read_sql(db: Database) -> str:
    return str(ONE.statement.compile(dialect=db.engine.dialect))


async def test_fetch_never_writes(db: Database):
    async with db.transaction() as session:
        await session.execute(INSERT, ROW)
    # SQLite: fetch's connection is read-only; elsewhere: refused, and the read session rolls back
    with pytest.raises((sa.exc.OperationalError, ValueError), match=r"readonly|for reads"):
        await db.fetch(Compiled(delete(T)))
    assert (await db.fetch(COUNT)).scalar() == 1
