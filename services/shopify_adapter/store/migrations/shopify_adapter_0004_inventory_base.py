"""shopify_adapter: inventory_push.base_quantity, lower_quantity, lower_since (Shopify's own sales
are never undone by a push; docs/decisions/0025-shopify-sales-never-undone-by-a-push.md).

Revision ID: shopify_adapter_0004
Revises: shopify_adapter_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0004"
down_revision = "shopify_adapter_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory_push") as batch:
        batch.add_column(sa.Column("base_quantity", sa.Integer))
        batch.add_column(sa.Column("lower_quantity", sa.Integer))
        batch.add_column(sa.Column("lower_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("inventory_push") as batch:
        batch.drop_column("lower_since")
        batch.drop_column("lower_quantity")
        batch.drop_column("base_quantity")
