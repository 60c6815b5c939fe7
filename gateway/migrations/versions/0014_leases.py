"""Leases: background work that one process of the instance does at a time (a batch job,
the following of a region's change feed), taken over when its holder dies.

Revision ID: g0014
Revises: g0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "g0014"
down_revision = "g0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
