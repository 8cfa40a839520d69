"""Fixtures shared by every tier: real NATS and PostgreSQL servers on free ports."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.bus.embedded import EmbeddedNats
from tools.postgres import PostgresCluster

_db_names = itertools.count(1)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh nats-server with JetStream (file store, sync always) on a free port."""
    server = EmbeddedNats(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole test session."""
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """An SQLAlchemy URL of a new, empty PostgreSQL database for this test."""
    return postgres_cluster.create_database(f"test_{next(_db_names)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLAlchemy URL of a new SQLite database file for this test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")
