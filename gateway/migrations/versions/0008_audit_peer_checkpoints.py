"""The audit checkpoints this instance saw its trusted peers publish: the copies a peer's
rewritten or cut history would no longer match.

Revision ID: g0008
Revises: g0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "g0008"
down_revision = "g0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_peer_checkpoints",
        sa.Column("issuer", sa.String(200), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_peer_checkpoints")
