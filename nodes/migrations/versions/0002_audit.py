"""The node's audit log of the on-behalf-of assertions it served.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_audit_tables()


def downgrade() -> None:
    for table in ("audit_head", "audit_checkpoints", "audit_entries"):
        op.drop_table(table)


def _create_audit_tables() -> None:
    # The audit log's tables as this revision created them (a frozen copy: the live
    # definitions in infra.auditlog may move on; this revision must not).
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("sealed_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_audit_subject", "audit_entries", ["subject", "seq"])
    op.create_index("ix_audit_actor", "audit_entries", ["actor", "seq"])
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64, "sealed_seq": 0}])
