"""Alembic migrations for a service database: every library and the service bring their own
version folder with a branch label, and `upgrade` takes all of them to their heads."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from libs.store.db import Database

SCRIPT_LOCATION = str(Path(__file__).resolve().parent / "alembic")


def alembic_config(version_locations: Sequence[str | Path]) -> Config:
    """An in-memory Alembic config over our shared env.py and the given version folders."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations))
    return config


async def upgrade(db: Database, version_locations: Sequence[str | Path]) -> None:
    """Upgrade `db` to every head found in `version_locations` (idempotent, safe at each start).

    On PostgreSQL several replicas may start at once; an advisory lock makes them migrate in turn.
    """
    config = alembic_config(version_locations)

    def _run(connection: Connection) -> None:
        if db.dialect == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7265746169)")
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")

    async with db.engine.begin() as connection:
        await connection.run_sync(_run)


@asynccontextmanager
async def migrated(url: str, version_locations: Sequence[str | Path]) -> AsyncIterator[Database]:
    """Open the service database at `url`, upgrade it to every head, and close it on exit."""
    db = Database(url)
    try:
        await upgrade(db, version_locations)
        yield db
    finally:
        await db.dispose()
