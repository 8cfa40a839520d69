"""The shipments service's tables and their Alembic migrations (branch label "shipments")."""

from pathlib import Path

from services.shipments.store.tables import ShipmentRequestRow, ShipmentRow

#: Alembic version folder of the shipments tables, for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

__all__ = ["MIGRATIONS", "ShipmentRequestRow", "ShipmentRow"]
