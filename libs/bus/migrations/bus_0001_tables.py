"""libs/bus tables: outbox, inbox, dead_letter, hop_log.

Revision ID: bus0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "bus0001"
down_revision = None
branch_labels = ("bus",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("key", sa.String(160)),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("available_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.Column("stream", sa.String(64)),
        sa.Column("stream_seq", sa.BigInteger),
    )
    op.create_index("ix_outbox_status_available_at", "outbox", ["status", "available_at"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])

    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("processed_at", TS, nullable=False),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])

    op.create_table(
        "dead_letter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(128)),
        sa.Column("event_type", sa.String(255)),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("replayed_at", TS),
        sa.Column("replay_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("consumer", "stream", "stream_seq", name="uq_dead_letter_message"),
    )
    op.create_index("ix_dead_letter_created_at", "dead_letter", ["created_at"])

    op.create_table(
        "hop_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("event_id", sa.String(128)),
        sa.Column("hop", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("payload_snapshot", sa.JSON),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_hop_log_correlation_id", "hop_log", ["correlation_id"])
    op.create_index("ix_hop_log_created_at", "hop_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("hop_log")
    op.drop_table("dead_letter")
    op.drop_table("inbox")
    op.drop_table("outbox")
