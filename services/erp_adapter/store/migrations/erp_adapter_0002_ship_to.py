"""erp_sales_order.ship_to: the latest address correction of an order and what BC made of it (O7).

Revision ID: erp_adapter0002
Revises: erp_adapter0001
Create Date: 2026-06-20
"""

import sqlalchemy as sa
from alembic import op

revision = "erp_adapter0002"
down_revision = "erp_adapter0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("erp_sales_order") as batch:
        batch.add_column(sa.Column("ship_to", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("erp_sales_order") as batch:
        batch.drop_column("ship_to")
