"""Batch lists keep what the officer uploaded beside each code: the list's names and which
rows repeat an earlier one; a finished job keeps its table's counts, and an officer's jobs
are listed newest first.

Revision ID: g0012
Revises: g0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "g0012"
down_revision = "g0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: added in place on SQLite and PostgreSQL alike, the rows stored
    # before read as a list without names or repeats and a job whose counts are not kept.
    op.add_column("batch_inputs", sa.Column("names", sa.Text(), nullable=True))
    op.add_column("batch_inputs", sa.Column("duplicate_of", sa.Text(), nullable=True))
    op.add_column("batch_jobs", sa.Column("counts", sa.Text(), nullable=True))
    op.create_index("ix_batch_jobs_created_by", "batch_jobs", ["created_by", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_batch_jobs_created_by", table_name="batch_jobs")
    with op.batch_alter_table("batch_jobs") as table:
        table.drop_column("counts")
    with op.batch_alter_table("batch_inputs") as table:
        table.drop_column("duplicate_of")
        table.drop_column("names")
