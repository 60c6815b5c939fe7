"""The record versions each report contains, and the change-feed cursors that mark
reports superseded when those records change.

Revision ID: g0004
Revises: g0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "g0004"
down_revision = "g0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_records",
        sa.Column("report_no", sa.String(32), primary_key=True),
        sa.Column("region", sa.String(16), primary_key=True),
        sa.Column("record_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_report_records_record", "report_records", ["region", "record_id"])
    op.create_table(
        "feed_cursors",
        sa.Column("region", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_cursors")
    op.drop_table("report_records")
