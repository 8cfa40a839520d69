"""inventory tables: positions, reservations, request log, consumed shipment lines, snapshots.

Revision ID: inventory0001
Revises:
Create Date: 2025-06-01
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory0001"
down_revision = None
branch_labels = ("inventory",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inventory_position",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("location_id", sa.String(64), primary_key=True),
        *(
            sa.Column(name, sa.Integer, nullable=False, server_default="0")
            for name in (
                "on_hand",
                "reserved",
                "committed",
                "incoming",
                "damaged",
                "quality_control",
                "safety_stock",
            )
        ),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_snapshot_at", TS),
    )
    op.create_table(
        "inventory_reservation",
        sa.Column("reservation_id", sa.String(200), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("shipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_inventory_reservation_order_id", "inventory_reservation", ["order_id"])
    op.create_table(
        "inventory_request",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "inventory_shipment_line",
        sa.Column("shipment_id", sa.String(64), primary_key=True),
        sa.Column("line_id", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "inventory_snapshot",
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("applied_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "inventory_snapshot",
        "inventory_shipment_line",
        "inventory_request",
        "inventory_reservation",
        "inventory_position",
    ):
        op.drop_table(table)
