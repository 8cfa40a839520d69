"""erp_shipment_posting: a BC shipment and a BC invoice belong to one shipment of ours at most.

A database-level guard for "one posting, one shipment": a second shipment recording the same BC
posting (the PostgreSQL race fixed in the handler) now fails its transaction, which is retried and
prepares again, instead of committing a shipment that was never posted.

Revision ID: erp_adapter0003
Revises: erp_adapter0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "erp_adapter0003"
down_revision = "erp_adapter0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_erp_shipment_posting_bc_shipment_id", "erp_shipment_posting", ["bc_shipment_id"], unique=True
    )
    op.create_index(
        "uq_erp_shipment_posting_bc_invoice_id", "erp_shipment_posting", ["bc_invoice_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_erp_shipment_posting_bc_invoice_id", "erp_shipment_posting")
    op.drop_index("uq_erp_shipment_posting_bc_shipment_id", "erp_shipment_posting")
