"""The erp-adapter's tables: erp_sales_order and erp_shipment_posting.

Revision ID: erp_adapter0001
Revises:
Create Date: 2026-03-02
"""

import sqlalchemy as sa
from alembic import op

revision = "erp_adapter0001"
down_revision = None
branch_labels = ("erp_adapter",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erp_sales_order",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("external_document_number", sa.String(35), nullable=False, index=True),
        sa.Column("bc_id", sa.String(64)),
        sa.Column("bc_number", sa.String(32)),
        sa.Column("bc_etag", sa.String(255)),
        sa.Column("customer_number", sa.String(64)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "erp_shipment_posting",
        sa.Column("shipment_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False, index=True),
        sa.Column("bc_shipment_id", sa.String(64), nullable=False),
        sa.Column("bc_shipment_number", sa.String(32), nullable=False),
        sa.Column("bc_invoice_id", sa.String(64)),
        sa.Column("bc_invoice_number", sa.String(32)),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erp_shipment_posting")
    op.drop_table("erp_sales_order")
