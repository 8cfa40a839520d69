"""The tpl-adapter's tables and their Alembic migrations (branch label "tpl_adapter")."""

from pathlib import Path

from services.tpl_adapter.store.tables import (
    EdiCounterRow,
    EdiFileRow,
    ReconciliationRunRow,
    ReleaseRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
    next_control_number,
)

#: Alembic version folder of the tpl-adapter tables, for `libs.store.migrated`.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

__all__ = [
    "MIGRATIONS",
    "EdiCounterRow",
    "EdiFileRow",
    "ReconciliationRunRow",
    "ReleaseRow",
    "WebhookDeliveryRow",
    "WebhookSubscriptionRow",
    "next_control_number",
]
