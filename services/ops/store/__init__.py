"""The ops service's own tables (business exceptions, clearances, request replies)."""

from pathlib import Path

#: Alembic version folder of the ops tables (branch label "ops"), for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
