"""shopify_adapter: webhook_delivery, channel_order, fulfillment_job, reconcile_watermark, reconciliation_run.

Revision ID: shopify_adapter_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "shopify_adapter_0001"
down_revision = None
branch_labels = ("shopify_adapter",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("webhook_id", sa.String(128)),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("shop_domain", sa.String(255), nullable=False),
        sa.Column("api_version", sa.String(32)),
        sa.Column("triggered_at", sa.String(64)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("order_gid", sa.String(255)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("processed_at", TS),
        sa.UniqueConstraint("event_id", name="uq_webhook_delivery_event_id"),
    )
    op.create_index(
        "ix_webhook_delivery_status_next_attempt_at", "webhook_delivery", ["status", "next_attempt_at"]
    )
    op.create_table(
        "channel_order",
        sa.Column("order_gid", sa.String(255), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("channel_updated_at", sa.String(64)),
        sa.Column("ingested_at", TS, nullable=False),
    )
    op.create_index("ix_channel_order_order_id", "channel_order", ["order_id"])
    op.create_table(
        "fulfillment_job",
        sa.Column("shipment_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("notice", sa.LargeBinary, nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("causation_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("fulfillment_gid", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("done_at", TS),
    )
    op.create_index(
        "ix_fulfillment_job_status_next_attempt_at", "fulfillment_job", ["status", "next_attempt_at"]
    )
    op.create_table(
        "reconcile_watermark",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("updated_at", sa.String(64), nullable=False),
        sa.Column("last_id", sa.String(255), nullable=False),
        sa.Column("saved_at", TS, nullable=False),
    )
    op.create_table(
        "reconciliation_run",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("run", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "reconciliation_run",
        "reconcile_watermark",
        "fulfillment_job",
        "channel_order",
        "webhook_delivery",
    ):
        op.drop_table(table)
