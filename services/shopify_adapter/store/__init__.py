"""The shopify-adapter's tables and their migrations (Alembic branch "shopify_adapter")."""

from pathlib import Path

#: Alembic version folder of this service's tables, for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
