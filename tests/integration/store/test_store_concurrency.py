"""libs.store used from outside the process: replicas migrating at once, another SQLite writer."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from libs.store import Database

REPO = Path(__file__).resolve().parents[3]

BRANCH = """
from alembic import op
import sqlalchemy as sa

revision = "{label}0001"
down_revision = None
branch_labels = ("{label}",)
depends_on = None


def upgrade():
    op.create_table("{label}_rows", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("{label}_rows")
"""


def _versions(tmp_path: Path, label: str) -> Path:
    folder = tmp_path / label
    folder.mkdir()
    (folder / f"{label}_0001.py").write_text(BRANCH.format(label=label))
    return folder


# One replica process: connects, says "ready", waits for "go" on stdin, then migrates.
REPLICA = """
import asyncio, sys
from libs.store import Database, upgrade

async def main(url, locations):
    db = Database(url)
    async with db.engine.connect():
        pass
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        await upgrade(db, locations)
    finally:
        await db.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


@pytest.mark.postgres
async def test_replicas_starting_at_once_migrate_in_turn(postgres_url: str, tmp_path: Path):
    # Every replica runs `upgrade` at start; on a fresh database they all find no alembic_version
    # table and would create it (and the branch tables) at the same moment. Separate processes,
    # as in a deployment: Alembic's module-level context cannot run twice at once in one process.
    locations = [str(_versions(tmp_path, "alpha")), str(_versions(tmp_path, "beta"))]
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            REPLICA,
            postgres_url,
            *locations,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        async with asyncio.timeout(60):
            for replica in replicas:
                assert await replica.stdout.readline() == b"ready\n"
            for replica in replicas:
                replica.stdin.write(b"go\n")
            results = await asyncio.gather(*(replica.communicate() for replica in replicas))
    finally:
        for replica in replicas:
            if replica.returncode is None:
                replica.kill()
                await replica.wait()

    failures = [err.decode()[-400:] for (_out, err), r in zip(results, replicas, strict=True) if r.returncode]
    assert failures == []
    db = Database(postgres_url)
    async with db.read() as session:
        heads = sorted((await session.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    await db.dispose()
    assert heads == ["alpha0001", "beta0001"]


async def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_first_statement(sqlite_url: str):
    db = Database(sqlite_url)
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        await session.execute(text("INSERT INTO counter (id, n) VALUES (1, 0)"))
    # Another process on the same file (a second replica, an admin command): it must not slip a
    # write in between this transaction's read and its write, or that write fails "database is
    # locked" (a stale WAL snapshot cannot be upgraded to a writer).
    other = sqlite3.connect(db.url.database, timeout=0, isolation_level=None)
    try:
        async with db.transaction() as session:
            seen = (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            await session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": seen + 1})
    finally:
        other.close()

    async with db.read() as session:
        assert (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one() == 1
    await db.dispose()


async def test_a_writer_of_another_process_is_waited_for_without_blocking_the_event_loop(sqlite_url: str):
    # Statements run on the event loop's thread (libs.store.inline): a write lock held elsewhere
    # must be waited for by sleeping on the loop, never inside SQLite, or every task would stop.
    db = Database(sqlite_url)
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        await session.execute(text("INSERT INTO counter (id, n) VALUES (1, 0)"))
    other = sqlite3.connect(db.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0
    thirty = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            if ticks >= 30:
                thirty.set()
            await asyncio.sleep(0.01)

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    try:
        async with asyncio.timeout(10):
            await thirty.wait()  # the loop keeps running while the writer waits
        assert not writer.done()
        other.execute("COMMIT")
        async with asyncio.timeout(10):
            await writer
    finally:
        ticker.cancel()
        other.close()

    async with db.read() as session:
        assert (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one() == 1
    await db.dispose()
