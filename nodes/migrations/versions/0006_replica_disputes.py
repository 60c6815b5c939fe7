"""The records under objection at each peer, as its change feed says, so that replica
answers keep the 异议处理中 mark.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_disputes",
        sa.Column("origin", sa.String(10), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("replica_disputes")
