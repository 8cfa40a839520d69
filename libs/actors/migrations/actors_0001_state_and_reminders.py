"""actors: actor_state and actor_reminder."""

import sqlalchemy as sa
from alembic import op

revision = "actors_0001"
down_revision = None
branch_labels = ("actors",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actor_state",
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_actor_state")),
    )
    op.create_table(
        "actor_reminder",
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", "key", "name", name=op.f("pk_actor_reminder")),
    )
    op.create_index("ix_actor_reminder_due_at", "actor_reminder", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_actor_reminder_due_at", table_name="actor_reminder")
    op.drop_table("actor_reminder")
    op.drop_table("actor_state")
