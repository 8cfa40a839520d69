"""shopify_adapter: inventory_push (wanted vs pushed availability per SKU@location), shopify_inventory_item.

Revision ID: shopify_adapter_0002
Revises: shopify_adapter_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0002"
down_revision = "shopify_adapter_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inventory_push",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("location_id", sa.String(64), primary_key=True),
        sa.Column("wanted_quantity", sa.Integer, nullable=False),
        sa.Column("wanted_version", sa.BigInteger, nullable=False),
        sa.Column("wanted_at", TS, nullable=False),
        sa.Column("pending_since", TS),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("pushed_quantity", sa.Integer),
        sa.Column("pushed_version", sa.BigInteger, nullable=False),
        sa.Column("pushed_at", TS),
        sa.Column("shopify_available", sa.Integer),
        sa.Column("item_gid", sa.String(255)),
        sa.Column("location_gid", sa.String(255)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", TS, nullable=False),
    )
    op.create_index("ix_inventory_push_next_attempt_at", "inventory_push", ["next_attempt_at"])
    op.create_index("ix_inventory_push_item_location", "inventory_push", ["item_gid", "location_gid"])
    op.create_table(
        "shopify_inventory_item",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("item_gid", sa.String(255), nullable=False),
        sa.Column("resolved_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shopify_inventory_item")
    op.drop_index("ix_inventory_push_item_location", table_name="inventory_push")
    op.drop_index("ix_inventory_push_next_attempt_at", table_name="inventory_push")
    op.drop_table("inventory_push")
