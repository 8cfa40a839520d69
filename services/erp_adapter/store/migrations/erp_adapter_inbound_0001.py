"""The erp-adapter's inbound documents read from Business Central (purchase orders), own branch
`erp_adapter_inbound` so it never competes with the sales-order branch for a head.

Revision ID: erp_adapter_inbound0001
Revises:
Create Date: 2026-06-12
"""

import sqlalchemy as sa
from alembic import op

revision = "erp_adapter_inbound0001"
down_revision = None
branch_labels = ("erp_adapter_inbound",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erp_inbound_document",
        sa.Column("document_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("last_modified", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erp_inbound_document")
