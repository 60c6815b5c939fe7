"""Ended sessions: a logged-out token's id, or every token of an account issued before a
moment (its role changed or it was removed).

Revision ID: g0007
Revises: g0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "g0007"
down_revision = "g0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_revocations")
