"""libs.store.group on SQLite and PostgreSQL: what a caller of `GroupCommit.run` can count on.

Proved here, each on both databases:

- concurrent units share transactions (fewer commits than units) and every one of them commits;
- `run` returns only after the shared commit: a read right after it sees the row, and no caller
  is answered while the group is still open (nor does an outside reader see a neighbour's row);
- a unit that raises, in Python or in the database (a unique key), never commits and its caller
  gets the error (from its run alone), while its neighbours commit: the ones before it together,
  the ones after it together;
- a failure of the shared transaction itself (a deferred constraint that fails at COMMIT) makes
  every unit run again alone: the good ones commit, the bad one's caller gets the error;
- each unit runs in its own caller's contextvars context;
- urgent units go before normal ones queued earlier; `max_units` caps a group;
- a caller cancelled while it waits neither cancels its neighbours' commit nor its own unit;
- `after_commit` callbacks run after the shared COMMIT, and only for the units that committed;
- a unit queued from such a callback (an actor told of a commit writes its turn) is written;
- a unit that leaves the transaction broken (it swallows a database error, which on PostgreSQL
  aborts the whole transaction) does not cost its neighbours their commit;
- a unit that lets a CancelledError out (a task it awaited was cancelled) does not strand the
  units queued behind its group.

No fixed sleeps: the tests hold a group open with events they control and wait for conditions
with deadlines.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import await_

from libs.store import Database, GroupCommit, after_commit

T = TypeVar("T")

#: Long enough for a busy 2-core machine; a test that needs it has hung.
DEADLINE = 30.0

metadata = sa.MetaData()
rows = sa.Table("gc_rows", metadata, sa.Column("id", sa.Integer, primary_key=True))
parents = sa.Table("gc_parents", metadata, sa.Column("id", sa.Integer, primary_key=True))
# Checked at COMMIT, not at the INSERT: on both databases a violation fails the shared commit.
children = sa.Table(
    "gc_children",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "parent_id",
        sa.Integer,
        sa.ForeignKey("gc_parents.id", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
)

caller_name: contextvars.ContextVar[str] = contextvars.ContextVar("caller_name", default="writer")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, DEADLINE)


def insert(row_id: int, *, then: Callable[[], Awaitable[Any]] | None = None) -> Any:
    """A unit that inserts row `row_id`, then awaits `then()` if given; returns `row_id`."""

    async def work(session: AsyncSession) -> int:
        await session.execute(sa.insert(rows).values(id=row_id))
        if then is not None:
            await then()
        return row_id

    return work


async def committed(db: Database) -> set[int]:
    """The row ids an outside reader sees."""
    async with db.read() as session:
        return set((await session.execute(sa.select(rows.c.id))).scalars())


async def test_concurrent_units_all_commit_in_fewer_transactions_than_units(db: Database):
    results = await within(asyncio.gather(*(db.group.run(insert(i)) for i in range(50))))

    assert results == list(range(50))
    assert db.group.stats.units == 50
    assert db.group.stats.transactions < 50
    assert db.group.stats.regrouped == 0
    assert await committed(db) == set(range(50))


async def test_run_returns_only_after_the_shared_commit(db: Database):
    commits_let_go: list[int] = []

    def before_commit(_connection: Any) -> None:
        # Hold each COMMIT for a few turns of the loop: a caller answered before it would return
        # meanwhile, and find no COMMIT let go yet.
        for _ in range(20):
            await_(asyncio.sleep(0))
        commits_let_go.append(1)

    event.listen(db.engine.sync_engine, "commit", before_commit)

    async def caller(i: int) -> tuple[bool, bool]:
        await db.group.run(insert(i))
        # Right after `run`: a COMMIT has gone out, and the caller's own read sees its row.
        return bool(commits_let_go), i in await committed(db)

    assert await within(asyncio.gather(*(caller(i) for i in range(10)))) == [(True, True)] * 10
    assert 1 <= db.group.stats.transactions < 10


async def test_a_group_in_flight_is_invisible_outside_and_answers_no_one(db: Database):
    blocking, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        blocking.set()
        await release.wait()

    neighbour = asyncio.create_task(db.group.run(insert(1)))
    holder = asyncio.create_task(db.group.run(insert(2, then=hold)))
    try:
        await within(blocking.wait())
        # The neighbour's unit ran before the holder's, in the same transaction: not committed yet.
        assert await committed(db) == set()
        assert not neighbour.done()
    finally:
        release.set()
    assert await within(asyncio.gather(neighbour, holder)) == [1, 2]

    assert await committed(db) == {1, 2}
    assert db.group.stats.transactions == 1


async def test_a_unit_that_raises_is_rolled_back_alone(db: Database):
    async def fail() -> None:
        raise ValueError("handler failed")

    results = await within(
        asyncio.gather(
            db.group.run(insert(1)),
            db.group.run(insert(2, then=fail)),
            db.group.run(insert(3)),
            return_exceptions=True,
        )
    )

    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)
    assert await committed(db) == {1, 3}
    # The group split once: unit 1 again (alone: nothing before it), unit 2 alone (failed, no
    # commit), unit 3 (alone: nothing after it).
    assert (db.group.stats.transactions, db.group.stats.units, db.group.stats.regrouped) == (2, 2, 1)


async def test_a_failing_unit_splits_its_group_around_it(db: Database):
    runs: list[int] = []

    async def fail() -> None:
        raise ValueError("handler failed")

    def unit(i: int) -> Any:
        async def work(session: AsyncSession) -> int:
            runs.append(i)
            await session.execute(sa.insert(rows).values(id=i))
            if i == 3:
                await fail()
            return i

        return work

    results = await within(
        asyncio.gather(*(db.group.run(unit(i)) for i in range(1, 7)), return_exceptions=True)
    )

    assert results[:2] == [1, 2] and results[3:] == [4, 5, 6] and isinstance(results[2], ValueError)
    assert await committed(db) == {1, 2, 4, 5, 6}
    # Together up to the failure; then 1-2 together, 3 alone, 4-6 together.
    assert runs == [1, 2, 3, 1, 2, 3, 4, 5, 6]
    assert (db.group.stats.transactions, db.group.stats.units, db.group.stats.regrouped) == (2, 5, 1)


async def test_a_unique_violation_is_rolled_back_alone(db: Database):
    async with db.transaction() as session:
        await session.execute(sa.insert(rows).values(id=100))

    async def duplicate(session: AsyncSession) -> None:
        await session.execute(sa.insert(rows).values(id=200))
        await session.execute(sa.insert(rows).values(id=100))

    results = await within(
        asyncio.gather(
            db.group.run(insert(1)),
            db.group.run(duplicate),
            db.group.run(insert(3)),
            return_exceptions=True,
        )
    )

    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], IntegrityError)
    # Row 200 went with the failing unit (its group rolled back, then its own run alone).
    assert await committed(db) == {1, 3, 100}
    assert db.group.stats.regrouped == 1


async def test_a_failed_shared_commit_runs_each_unit_again_alone(db: Database):
    async with db.transaction() as session:
        await session.execute(sa.insert(parents).values(id=1))
    runs: list[str] = []

    def unit(name: str, parent_id: int) -> Any:
        async def work(session: AsyncSession) -> str:
            runs.append(name)
            await session.execute(sa.insert(children).values(id=len(runs), parent_id=parent_id))
            return name

        return work

    results = await within(
        asyncio.gather(
            db.group.run(unit("good-1", 1)),
            db.group.run(unit("orphan", 999)),  # a deferred foreign key: fails the COMMIT
            db.group.run(unit("good-2", 1)),
            return_exceptions=True,
        )
    )

    assert results[0] == "good-1" and results[2] == "good-2"
    assert isinstance(results[1], IntegrityError)
    assert runs == ["good-1", "orphan", "good-2"] * 2  # once together, then each alone
    assert db.group.stats.regrouped == 1
    assert (db.group.stats.transactions, db.group.stats.units) == (2, 2)
    async with db.read() as session:
        kept = (await session.execute(sa.select(children.c.parent_id))).scalars().all()
    assert kept == [1, 1]


async def test_each_unit_runs_in_its_callers_context(db: Database):
    async def caller(name: str) -> tuple[str, str]:
        caller_name.set(name)

        async def work(session: AsyncSession) -> str:
            seen = caller_name.get()
            await session.execute(sa.insert(rows).values(id=int(name.removeprefix("caller-"))))
            caller_name.set("changed by the unit")  # stays in the unit: not its neighbours'
            return seen

        seen = await db.group.run(work)
        return seen, caller_name.get()

    names = [f"caller-{i}" for i in range(8)]
    results = await within(asyncio.gather(*(caller(name) for name in names)))

    assert results == [(name, name) for name in names]
    assert db.group.stats.transactions < len(names)  # they shared transactions
    assert caller_name.get() == "writer"


async def test_urgent_units_run_before_normal_units_queued_earlier(db: Database):
    order: list[str] = []
    blocking, release = asyncio.Event(), asyncio.Event()

    def unit(name: str, row_id: int, *, hold: bool = False) -> Any:
        async def work(session: AsyncSession) -> None:
            order.append(name)
            await session.execute(sa.insert(rows).values(id=row_id))
            if hold:
                blocking.set()
                await release.wait()

        return work

    first = asyncio.create_task(db.group.run(unit("first", 0, hold=True)))
    try:
        await within(blocking.wait())
        normal = [asyncio.create_task(db.group.run(unit(f"normal-{i}", i))) for i in range(1, 4)]
        urgent = asyncio.create_task(db.group.run(unit("urgent", 4), urgent=True))
        await asyncio.sleep(0)  # one turn of the loop: all four queue behind the group in flight
    finally:
        release.set()
    await within(asyncio.gather(first, *normal, urgent))

    assert order == ["first", "urgent", "normal-1", "normal-2", "normal-3"]
    assert await committed(db) == {0, 1, 2, 3, 4}


async def test_max_units_caps_a_group(db: Database):
    group = GroupCommit(db, max_units=4)
    sessions: list[AsyncSession] = []  # the units of one group share its session

    def unit(i: int) -> Any:
        async def work(session: AsyncSession) -> None:
            sessions.append(session)
            await session.execute(sa.insert(rows).values(id=i))

        return work

    await within(asyncio.gather(*(group.run(unit(i)) for i in range(10))))

    sizes = list(Counter(id(session) for session in sessions).values())
    assert sum(sizes) == 10
    assert max(sizes) <= 4
    assert group.stats.transactions == len(sizes) >= 3
    assert group.stats.units == 10
    assert await committed(db) == set(range(10))


async def test_a_cancelled_caller_stops_waiting_but_its_neighbours_and_its_unit_commit(db: Database):
    blocking, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        blocking.set()
        await release.wait()

    # The first caller's `run` starts the writer; its unit holds the first group open.
    starter = asyncio.create_task(db.group.run(insert(1, then=hold)))
    mate = asyncio.create_task(db.group.run(insert(2)))  # in the starter's group
    try:
        await within(blocking.wait())
        quitter = asyncio.create_task(db.group.run(insert(3)))  # queued for the next group
        stayer = asyncio.create_task(db.group.run(insert(4)))
        await asyncio.sleep(0)  # one turn of the loop: both queue behind the group in flight
        starter.cancel()
        quitter.cancel()
        for task in (starter, quitter):
            with pytest.raises(asyncio.CancelledError):
                await within(task)
        assert not mate.done() and not stayer.done()
    finally:
        release.set()

    assert await within(asyncio.gather(mate, stayer)) == [2, 4]
    # Cancelling only stopped the waiting: the units of both cancelled callers committed too, the
    # one in flight and the one still queued.
    assert await committed(db) == {1, 2, 3, 4}
    assert (db.group.stats.transactions, db.group.stats.units, db.group.stats.regrouped) == (2, 4, 0)


async def test_after_commit_callbacks_run_for_committed_units_only(db: Database):
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _connection: commits.append(1))
    called: list[tuple[str, int]] = []  # (unit, COMMITs issued by then)

    def unit(name: str, row_id: int, *, fail: bool = False) -> Any:
        async def work(session: AsyncSession) -> str:
            await session.execute(sa.insert(rows).values(id=row_id))
            after_commit(session, lambda: called.append((name, len(commits))))
            if fail:
                raise ValueError("handler failed")
            return name

        return work

    results = await within(
        asyncio.gather(
            db.group.run(unit("a", 1)),
            db.group.run(unit("b", 2, fail=True)),
            db.group.run(unit("c", 3)),
            return_exceptions=True,
        )
    )

    assert results[0] == "a" and results[2] == "c" and isinstance(results[1], ValueError)
    # The group rolled back with b's failure: nobody's callback ran for it. a's ran once, after
    # the COMMIT of its second run; b's never (it never committed); c's after its own COMMIT.
    assert called == [("a", 1), ("c", 2)]
    assert db.group.stats.transactions == 2


@pytest.mark.parametrize("neighbours", [0, 1], ids=["alone", "in-a-group"])
async def test_a_unit_queued_by_an_after_commit_callback_is_written(db: Database, neighbours: int):
    # `after_commit` is for "wake a relay, tell an actor"; the actor's turn writes through the same
    # group commit, and its `run` comes while the writer that ran the callback is finishing.
    follow_ups: list[asyncio.Task[int]] = []

    def tell_an_actor() -> None:
        follow_ups.append(asyncio.get_running_loop().create_task(db.group.run(insert(100))))

    async def first(session: AsyncSession) -> int:
        await session.execute(sa.insert(rows).values(id=0))
        after_commit(session, tell_an_actor)
        return 0

    callers = [db.group.run(first), *(db.group.run(insert(i)) for i in range(1, 1 + neighbours))]
    assert await within(asyncio.gather(*callers)) == list(range(1 + neighbours))
    assert len(follow_ups) == 1
    assert await within(follow_ups[0]) == 100
    assert await committed(db) == {*range(1 + neighbours), 100}


async def test_a_unit_that_breaks_the_transaction_does_not_cost_its_neighbours_their_commit(db: Database):
    async with db.transaction() as session:
        await session.execute(sa.insert(rows).values(id=100))

    async def insert_or_ignore(session: AsyncSession) -> str:
        await session.execute(sa.insert(rows).values(id=2))
        try:
            await session.execute(sa.insert(rows).values(id=100))
        except IntegrityError:
            pass  # on PostgreSQL the failed statement has aborted the whole transaction
        return "ignored"

    results = await within(
        asyncio.gather(
            db.group.run(insert(1)),
            db.group.run(insert_or_ignore),
            db.group.run(insert(3)),
            return_exceptions=True,
        )
    )

    # Whatever becomes of the unit that swallowed the error, its neighbours commit, and no caller
    # is answered with a result for a row that was not committed.
    assert results[0] == 1 and results[2] == 3
    assert {1, 3} <= await committed(db)


async def test_a_unit_that_lets_cancellation_out_does_not_strand_the_units_queued_behind_it(db: Database):
    blocking, release = asyncio.Event(), asyncio.Event()

    async def cancelled_inside(session: AsyncSession) -> None:
        await session.execute(sa.insert(rows).values(id=2))
        blocking.set()
        await release.wait()
        helper = asyncio.create_task(asyncio.sleep(DEADLINE))
        helper.cancel()
        await helper  # a task it waits for was cancelled: CancelledError, though nobody cancelled it

    group = [asyncio.create_task(db.group.run(work)) for work in (insert(1), cancelled_inside)]
    try:
        await within(blocking.wait())
        later = asyncio.create_task(db.group.run(insert(3)))
        await asyncio.sleep(0)  # one turn of the loop: it queues behind the group in flight
    finally:
        release.set()
    await within(asyncio.gather(*group, return_exceptions=True))

    # Whatever the group's own callers get, the unit queued behind it is still written.
    assert await within(later) == 3
    assert 3 in await committed(db)
