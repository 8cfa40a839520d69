"""libs.store on SQLite and PostgreSQL: migrations from several branches, transactions, WAL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from libs.store import Database, normalize_url, upgrade

BRANCH = """
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = None
branch_labels = ("{label}",)
depends_on = None


def upgrade():
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))


def downgrade():
    op.drop_table("{table}")
"""


def _versions(tmp_path: Path, label: str, table: str) -> Path:
    folder = tmp_path / label
    folder.mkdir()
    (folder / f"{label}_0001.py").write_text(BRANCH.format(rev=f"{label}0001", label=label, table=table))
    return folder


def test_plain_urls_get_async_drivers():
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"


async def test_upgrade_applies_every_branch_once_and_is_repeatable(database_url: str, tmp_path: Path):
    db = Database(database_url)
    locations = [_versions(tmp_path, "alpha", "alpha_rows"), _versions(tmp_path, "beta", "beta_rows")]

    await upgrade(db, locations)
    await upgrade(db, locations)

    async with db.read() as session:
        heads = sorted((await session.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        await session.execute(text("SELECT count(*) FROM alpha_rows"))
        await session.execute(text("SELECT count(*) FROM beta_rows"))
    assert heads == ["alpha0001", "beta0001"]
    await db.dispose()


async def test_concurrent_write_transactions_all_commit(database_url: str, tmp_path: Path):
    db = Database(database_url)
    await upgrade(db, [_versions(tmp_path, "alpha", "alpha_rows")])

    async def write(i: int) -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO alpha_rows (id, n) VALUES (:i, :i)"), {"i": i})

    await asyncio.gather(*(write(i) for i in range(50)))

    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM alpha_rows"))).scalar_one() == 50
    await db.dispose()


async def test_failed_transaction_rolls_back(database_url: str, tmp_path: Path):
    db = Database(database_url)
    await upgrade(db, [_versions(tmp_path, "alpha", "alpha_rows")])

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO alpha_rows (id, n) VALUES (1, 1)"))
            raise RuntimeError("handler failed")

    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM alpha_rows"))).scalar_one() == 0
    await db.dispose()


async def test_sqlite_runs_in_wal_mode(sqlite_url: str):
    db = Database(sqlite_url)

    async with db.read() as session:
        mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()

    assert mode == "wal"
    await db.dispose()


async def test_a_read_does_not_wait_for_an_open_write_transaction(database_url: str, tmp_path: Path):
    db = Database(database_url)
    await upgrade(db, [_versions(tmp_path, "alpha", "alpha_rows")])
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO alpha_rows (id, n) VALUES (1, 1)"))

    async with db.transaction() as writer:
        await writer.execute(text("UPDATE alpha_rows SET n = 2 WHERE id = 1"))

        async def read() -> int:
            async with db.read() as session:
                return (await session.execute(text("SELECT n FROM alpha_rows WHERE id = 1"))).scalar_one()

        # The reader sees the last committed value at once; it neither blocks nor sees the write.
        assert await asyncio.wait_for(read(), timeout=5) == 1

    async with db.read() as session:
        assert (await session.execute(text("SELECT n FROM alpha_rows"))).scalar_one() == 2
    await db.dispose()


async def test_an_urgent_writer_goes_before_the_writers_already_waiting(sqlite_url: str, tmp_path: Path):
    db = Database(sqlite_url)
    await upgrade(db, [_versions(tmp_path, "alpha", "alpha_rows")])
    order: list[str] = []

    async def write(name: str, urgent: bool) -> None:
        async with db.transaction(urgent=urgent):
            order.append(name)

    async with db.transaction():
        background = [asyncio.create_task(write(f"background-{i}", False)) for i in range(3)]
        await asyncio.sleep(0)  # one turn of the loop: each task runs up to its wait for the lock
        webhook = asyncio.create_task(write("webhook", True))
        await asyncio.sleep(0)
    await asyncio.gather(*background, webhook)

    assert order == ["webhook", "background-0", "background-1", "background-2"]
    await db.dispose()


async def test_a_writer_cancelled_while_waiting_leaves_the_lock_usable(sqlite_url: str, tmp_path: Path):
    db = Database(sqlite_url)
    await upgrade(db, [_versions(tmp_path, "alpha", "alpha_rows")])

    async def write(i: int) -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO alpha_rows (id, n) VALUES (:i, :i)"), {"i": i})

    async with db.transaction():
        doomed = asyncio.create_task(write(1))
        kept = asyncio.create_task(write(2))
        await asyncio.sleep(0)
        doomed.cancel()
    await asyncio.wait_for(kept, timeout=5)
    await asyncio.wait_for(write(3), timeout=5)

    async with db.read() as session:
        ids = (await session.execute(text("SELECT id FROM alpha_rows ORDER BY id"))).scalars().all()
    assert ids == [2, 3]
    await db.dispose()


async def test_delete_in_batches_removes_every_match_and_nothing_else(database_url: str):
    db = Database(database_url)
    marks = sa.Table(
        "marks",
        sa.MetaData(),
        sa.Column("consumer", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("n", sa.Integer),
    )
    async with db.engine.begin() as connection:
        await connection.run_sync(marks.metadata.create_all)
    async with db.transaction() as session:
        await session.execute(
            sa.insert(marks), [{"consumer": f"c{n % 3}", "event_id": f"e{n}", "n": n} for n in range(250)]
        )

    # A composite key, and batches smaller than the matches: several short transactions.
    deleted = await db.delete_in_batches(marks, marks.c.n < 200, marks.c.consumer != "c0", batch_size=40)

    async with db.read() as session:
        left = (await session.execute(sa.select(marks.c.n))).scalars().all()
    assert deleted == len([n for n in range(200) if n % 3 != 0])
    assert sorted(left) == sorted([n for n in range(200) if n % 3 == 0] + list(range(200, 250)))
    await db.dispose()
