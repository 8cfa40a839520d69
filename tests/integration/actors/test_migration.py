"""The actors migration creates exactly the tables the runtime's models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from libs.actors import ActorReminderRow, ActorStateRow
from libs.store import Base, Database

OURS = {ActorStateRow.__tablename__, ActorReminderRow.__tablename__}


async def test_migrated_schema_matches_the_models(db: Database):
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, *_: (
                    (obj.name if type_ == "table" else obj.table.name) in OURS
                ),
            },
        )
        return compare_metadata(context, Base.metadata)

    async with db.engine.connect() as connection:
        differences = await connection.run_sync(diff)

    assert differences == []
