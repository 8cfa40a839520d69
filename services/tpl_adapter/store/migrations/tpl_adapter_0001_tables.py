"""tpl-adapter tables: releases, EDI counter and files, webhook subscriptions and deliveries, runs.

Revision ID: tpl_adapter0001
Revises:
Create Date: 2026-07-01
"""

import sqlalchemy as sa
from alembic import op

revision = "tpl_adapter0001"
down_revision = None
branch_labels = ("tpl_adapter",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tpl_release",
        sa.Column("release_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("warehouse_order_id", sa.String(64)),
        sa.Column("edi_control", sa.BigInteger),
        sa.Column("cancel_control", sa.BigInteger),
        sa.Column("cancel_lines", sa.JSON),
        sa.Column("shipped", sa.Boolean, nullable=False),
        sa.Column("flow", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("release_id", name="pk_tpl_release"),
    )
    op.create_index("ix_tpl_release_order_id", "tpl_release", ["order_id"])
    op.create_index("ix_tpl_release_edi_control", "tpl_release", ["edi_control"])
    op.create_index("ix_tpl_release_cancel_control", "tpl_release", ["cancel_control"])
    op.create_table(
        "tpl_edi_counter",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_tpl_edi_counter"),
    )
    op.create_table(
        "tpl_webhook_subscription",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_tpl_webhook_subscription"),
    )
    op.create_table(
        "tpl_webhook_delivery",
        sa.Column("delivery_key", sa.String(160), nullable=False),
        sa.Column("webhook_id", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("processed_at", TS),
        sa.PrimaryKeyConstraint("delivery_key", name="pk_tpl_webhook_delivery"),
    )
    op.create_index("ix_tpl_webhook_delivery_status", "tpl_webhook_delivery", ["status"])
    op.create_table(
        "tpl_edi_file",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("set_code", sa.String(8), nullable=False),
        sa.Column("interchange_control", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_tpl_edi_file"),
    )
    op.create_table(
        "tpl_reconciliation_run",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("run", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_tpl_reconciliation_run"),
    )


def downgrade() -> None:
    for table in (
        "tpl_reconciliation_run",
        "tpl_edi_file",
        "tpl_webhook_delivery",
        "tpl_webhook_subscription",
        "tpl_edi_counter",
        "tpl_release",
    ):
        op.drop_table(table)
