"""Tables the bus tests' handlers write their side effects to.

Revision ID: bustest0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "bustest0001"
down_revision = None
branch_labels = ("bustest",)
depends_on = None


def upgrade() -> None:
    # No unique constraint on purpose: a handler applied twice shows up as two rows.
    op.create_table(
        "effects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("thing_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effects")
