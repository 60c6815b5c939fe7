"""A person's full name on their account (实名): shown to that person on their own
reports, where the published records carry the name masked.

Revision ID: g0013
Revises: g0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "g0013"
down_revision = "g0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("full_name", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "full_name")
