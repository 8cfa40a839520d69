"""Fixtures for the actor runtime tests: a migrated database, a manual clock, condition waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from libs.actors import MIGRATIONS
from libs.store import Database, upgrade


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


async def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until `condition()` is true, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (conditions here are plain state, not events)
            await asyncio.sleep(0.005)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at 2026-01-01 12:00 UTC."""
    return ManualClock()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test database (SQLite and PostgreSQL) with the actor tables migrated."""
    database = Database(database_url)
    await upgrade(database, [MIGRATIONS])
    yield database
    await database.dispose()
