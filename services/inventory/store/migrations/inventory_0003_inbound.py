"""inventory inbound signals (I5): ERP inbound document lines, receipt lines applied once.

Revision ID: inventory0003
Revises: inventory0002
Create Date: 2026-06-12
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory0003"
down_revision = "inventory0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inventory_inbound_line",
        sa.Column("line_key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("document_number", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("received", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("counted", sa.Integer, nullable=False),
        sa.Column("expected_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_inventory_inbound_document", "inventory_inbound_line", ["document_number", "sku", "location_id"]
    )
    op.create_index("ix_inventory_inbound_document_id", "inventory_inbound_line", ["document_id"])
    op.create_table(
        "inventory_receipt_line",
        sa.Column("receipt_id", sa.String(128), primary_key=True),
        sa.Column("line_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("document_number", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("damaged", sa.Integer, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index(
        "ix_inventory_receipt_document", "inventory_receipt_line", ["document_number", "sku", "location_id"]
    )


def downgrade() -> None:
    op.drop_table("inventory_receipt_line")
    op.drop_table("inventory_inbound_line")
