"""libs.store.UTCDateTime on SQLite and PostgreSQL: every read hands back an aware UTC datetime,
whichever path ran the statement (compiled on sqlite3, SQLAlchemy Core, the ORM), and a value
given in another zone is stored as the same instant in UTC, so comparisons keep time order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.store import Compiled, Database, UTCDateTime
from tests.integration.store.helpers import with_tables


class _Base(DeclarativeBase):
    pass


class Moment(_Base):
    __tablename__ = "utc_moment"
    id: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime())


M = Moment.__table__
INSERT = Compiled(insert(M))
ONE = Compiled(select(M.c.at).where(M.c.id == bindparam("b_id")))
UP_TO = Compiled(select(M.c.id).where(M.c.at <= bindparam("b_now")).order_by(M.c.id))

INSTANT = datetime(2026, 11, 29, 12, 0, 0, 250000, tzinfo=UTC)
EAST_OF_UTC = timezone(timedelta(hours=2))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with with_tables(database_url, _Base) as database:
        yield database


async def test_every_read_path_gives_the_same_aware_utc_instant(db: Database):
    async with db.transaction() as session:
        await session.execute(INSERT, {"id": "utc", "at": INSTANT})
        await session.execute(insert(M), {"id": "zoned", "at": INSTANT.astimezone(EAST_OF_UTC)})
        session.add(Moment(id="naive", at=INSTANT.replace(tzinfo=None)))  # naive is taken as UTC
        session.add(Moment(id="none", at=None))

    for key in ("utc", "zoned", "naive"):
        compiled = (await db.fetch(ONE, {"b_id": key})).scalar_one()
        async with db.read() as session:
            core = (await session.execute(ONE.statement, {"b_id": key})).scalar_one()
            orm = (await session.get(Moment, key)).at
        for value in (compiled, core, orm):
            assert value == INSTANT, key
            assert value.utcoffset() == timedelta(0), key
    assert (await db.fetch(ONE, {"b_id": "none"})).scalar_one() is None


async def test_a_bound_instant_in_another_zone_compares_in_time_order(db: Database):
    async with db.transaction() as session:
        await session.execute(INSERT, {"id": "early", "at": INSTANT - timedelta(minutes=30)})
        await session.execute(INSERT, {"id": "late", "at": INSTANT + timedelta(minutes=30)})

    # 12:00 UTC written as 14:00+02:00: stored as text on SQLite, it would sort after 12:30 unless
    # converted to UTC first.
    due = (await db.fetch(UP_TO, {"b_now": INSTANT.astimezone(EAST_OF_UTC)})).scalars().all()

    assert due == ["early"]
