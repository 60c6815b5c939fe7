"""Login attempts per client address, shared by every front door and gateway process.

Revision ID: g0006
Revises: g0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "g0006"
down_revision = "g0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_attempts_key_at", "login_attempts", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_key_at", "login_attempts")
    op.drop_table("login_attempts")
