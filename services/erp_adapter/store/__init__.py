"""The erp-adapter's tables and their Alembic migrations (branch label "erp_adapter")."""

from pathlib import Path

from services.erp_adapter.store.inbound import ErpInboundDocumentRow
from services.erp_adapter.store.tables import ErpSalesOrderRow, ErpShipmentPostingRow

#: Alembic version folder of the erp-adapter tables, for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

__all__ = ["MIGRATIONS", "ErpInboundDocumentRow", "ErpSalesOrderRow", "ErpShipmentPostingRow"]
