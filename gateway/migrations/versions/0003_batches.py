"""Batch checks: jobs, their lists in chunks, and the regions' answers per chunk.

Revision ID: g0003
Revises: g0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "g0003"
down_revision = "g0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("profile", sa.String(40), nullable=False),
        sa.Column("years", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_batch_jobs_status", "batch_jobs", ["status"])
    op.create_table(
        "batch_inputs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("chunk_no", sa.Integer(), primary_key=True),
        sa.Column("subjects", sa.Text(), nullable=False),
    )
    op.create_table(
        "batch_results",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("chunk_no", sa.Integer(), primary_key=True),
        sa.Column("region", sa.String(16), primary_key=True),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("batch_results", "batch_inputs", "batch_jobs"):
        op.drop_table(table)
