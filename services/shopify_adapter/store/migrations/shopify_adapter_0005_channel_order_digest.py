"""shopify_adapter: channel_order.content_digest and ingested_updated_at (an order version whose
content equals the last one ingested, only its time moved, is not ingested again: Shopify's echo
of the mesh's own fulfillment; see services/shopify_adapter/sync/ingest.py).

Revision ID: shopify_adapter_0005
Revises: shopify_adapter_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0005"
down_revision = "shopify_adapter_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_order") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(64)))
        batch.add_column(sa.Column("ingested_updated_at", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("channel_order") as batch:
        batch.drop_column("ingested_updated_at")
        batch.drop_column("content_digest")
