"""The orders service's own tables (read model, request replies, exceptions, durable inbound facts)."""

from pathlib import Path

#: Alembic version folder of the orders tables (branch label "orders"), for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
