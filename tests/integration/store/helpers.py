"""A database with one test module's own tables, new for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.orm import DeclarativeBase

from libs.store import Database


@asynccontextmanager
async def with_tables(database_url: str, base: type[DeclarativeBase]) -> AsyncIterator[Database]:
    """`Database(database_url)` with `base`'s tables dropped and created again; disposed on exit."""
    database = Database(database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(base.metadata.drop_all)
        await connection.run_sync(base.metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()
