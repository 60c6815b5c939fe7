"""Replicas of the peer regions' records and the cursors of their change feeds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_records",
        sa.Column("origin", sa.String(10), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("origin_seq", sa.BigInteger(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_replica_subject", "replica_records", ["subject_id"])
    op.create_table(
        "replica_cursors",
        sa.Column("origin", sa.String(10), primary_key=True),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("changes_applied", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin_data_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin_head_seq", sa.BigInteger(), nullable=False),
        sa.Column("catalogue", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("replica_cursors")
    op.drop_table("replica_records")
