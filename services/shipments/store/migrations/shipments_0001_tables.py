"""shipments tables: shipment, shipment_request.

Revision ID: shipments0001
Revises:
Create Date: 2026-07-01
"""

import sqlalchemy as sa
from alembic import op

revision = "shipments0001"
down_revision = None
branch_labels = ("shipments",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipment",
        sa.Column("shipment_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("warehouse_system", sa.Integer, nullable=False),
        sa.Column("warehouse_shipment_id", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("shipped_at", TS, nullable=False),
        sa.Column("tracking_applied_at", TS),
        sa.Column("delivered_packages", sa.JSON, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("notice", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("shipment_id", name="pk_shipment"),
        sa.UniqueConstraint("warehouse_system", "warehouse_shipment_id", name="uq_shipment_warehouse_system"),
    )
    op.create_index("ix_shipment_order_id", "shipment", ["order_id"])
    op.create_index("ix_shipment_shipped_at", "shipment", ["shipped_at"])
    op.create_table(
        "shipment_request",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("shipment_id", sa.String(64), nullable=False),
        sa.Column("created", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_shipment_request"),
    )


def downgrade() -> None:
    op.drop_table("shipment_request")
    op.drop_index("ix_shipment_shipped_at", table_name="shipment")
    op.drop_index("ix_shipment_order_id", table_name="shipment")
    op.drop_table("shipment")
