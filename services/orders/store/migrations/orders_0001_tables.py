"""orders tables: order_summary, order_request, order_exception, order_inbound, order_backorder.

Revision ID: orders0001
Revises:
Create Date: 2026-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "orders0001"
down_revision = None
branch_labels = ("orders",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "order_summary",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("channel_order_id", sa.String(255), nullable=False),
        sa.Column("placed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("hold_reasons", sa.String(255), nullable=False),
        sa.Column("locations", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("snapshot_json", sa.Text, nullable=False),
    )
    op.create_index("ix_order_summary_status", "order_summary", ["status"])
    op.create_index("ix_order_summary_channel_order_id", "order_summary", ["channel_order_id"])
    op.create_index("ix_order_summary_placed_at", "order_summary", ["placed_at"])
    op.create_table(
        "order_request",
        sa.Column("request_id", sa.String(160), primary_key=True),
        sa.Column("rpc", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("reply_json", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "order_exception",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
    )
    op.create_index("ix_order_exception_order_id", "order_exception", ["order_id"])
    op.create_table(
        "order_inbound",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_order_inbound_order_id", "order_inbound", ["order_id"])
    op.create_table(
        "order_backorder",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
    )
    op.create_index("ix_order_backorder_sku", "order_backorder", ["sku"])


def downgrade() -> None:
    for table in ("order_backorder", "order_inbound", "order_exception", "order_request", "order_summary"):
        op.drop_table(table)
