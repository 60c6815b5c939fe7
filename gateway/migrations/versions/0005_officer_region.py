"""An agency officer's region: whose authorities' cases the officer decides.

Revision ID: g0005
Revises: g0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "g0005"
down_revision = "g0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("region", sa.String(10), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "region")
