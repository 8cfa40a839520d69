"""ops tables: ops_exception (worklists, V3), ops_clearance, ops_request.

Revision ID: ops0001
Revises:
Create Date: 2026-06-20
"""

import sqlalchemy as sa
from alembic import op

revision = "ops0001"
down_revision = None
branch_labels = ("ops",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ops_exception",
        sa.Column("exception_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("worklist", sa.String(32), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("reason_message", sa.Text, nullable=False),
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("external_code", sa.String(255), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(128), nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolution", sa.String(32), nullable=False),
        sa.Column("resolution_note", sa.Text, nullable=False),
        sa.Column("resolved_by", sa.String(128), nullable=False),
    )
    # One exception per cause while not resolved; the unique index decides, never a prior read.
    op.create_index(
        "uq_ops_exception_open_cause",
        "ops_exception",
        ["kind", "subject"],
        unique=True,
        sqlite_where=sa.text("state != 'RESOLVED'"),
        postgresql_where=sa.text("state != 'RESOLVED'"),
    )
    op.create_index("ix_ops_exception_state_opened", "ops_exception", ["state", "opened_at", "exception_id"])
    op.create_index("ix_ops_exception_order_id", "ops_exception", ["order_id"])
    op.create_table(
        "ops_clearance",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("cleared_at", TS, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "ops_request",
        sa.Column("request_id", sa.String(160), primary_key=True),
        sa.Column("rpc", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ops_request")
    op.drop_table("ops_clearance")
    op.drop_index("ix_ops_exception_order_id", "ops_exception")
    op.drop_index("ix_ops_exception_state_opened", "ops_exception")
    op.drop_index("uq_ops_exception_open_cause", "ops_exception")
    op.drop_table("ops_exception")
