"""Fixtures for the bus tests: a migrated database and a NATS client on the test's server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from libs.bus import MIGRATIONS
from libs.store import Database, upgrade

TEST_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test database with the bus tables and the handlers' `effects` table."""
    database = Database(database_url)
    await upgrade(database, [MIGRATIONS, TEST_MIGRATIONS])
    yield database
    await database.dispose()


@pytest.fixture
async def nc(nats_server) -> AsyncIterator[NATS]:
    """A NATS client that reconnects forever, on the test's server."""
    client = await nats.connect(
        nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, name="bus-tests"
    )
    yield client
    await client.close()
