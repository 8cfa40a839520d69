"""shopify_adapter: inventory_push.held_quantity (Shopify's lower figure kept as a ceiling, I5).

Revision ID: shopify_adapter_0003
Revises: shopify_adapter_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0003"
down_revision = "shopify_adapter_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory_push") as batch:
        batch.add_column(sa.Column("held_quantity", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("inventory_push") as batch:
        batch.drop_column("held_quantity")
