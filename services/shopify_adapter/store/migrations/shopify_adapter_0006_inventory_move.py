"""shopify_adapter: inventory_move (Shopify's committed units moved between locations by the
adapter's fulfillment-order moves, waiting to be applied to inventory_push; decision 0042).

Revision ID: shopify_adapter_0006
Revises: shopify_adapter_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0006"
down_revision = "shopify_adapter_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_move",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inventory_move")
