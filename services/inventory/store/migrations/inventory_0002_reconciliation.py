"""inventory reconciliation (I5): on_hand movements with their time, drifts with evidence.

Revision ID: inventory0002
Revises: inventory0001
Create Date: 2025-06-10
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory0002"
down_revision = "inventory0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inventory_movement",
        sa.Column("movement_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("reported", sa.Integer, nullable=False),
        sa.Column("applied", sa.Integer, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index(
        "ix_inventory_movement_position", "inventory_movement", ["sku", "location_id", "occurred_at"]
    )
    op.create_table(
        "inventory_drift",
        sa.Column("drift_id", sa.String(300), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(32), nullable=False),
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("snapshot_id", sa.String(128), nullable=False),
        sa.Column("as_of", TS, nullable=False),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in ("mesh", "in_flight", "expected", "observed", "reserved", "committed", "allocated")
        ),
        sa.Column("bound", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("result", sa.Integer, nullable=False),
        sa.Column("evidence", sa.String(4000), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
    )
    op.create_index("ix_inventory_drift_position", "inventory_drift", ["sku", "location_id", "detected_at"])


def downgrade() -> None:
    op.drop_table("inventory_drift")
    op.drop_table("inventory_movement")
