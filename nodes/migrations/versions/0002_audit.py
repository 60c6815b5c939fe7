"""The node's audit log of the on-behalf-of assertions it served.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from nodes.auditlog import create_audit_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_tables(op)


def downgrade() -> None:
    for table in ("audit_head", "audit_checkpoints", "audit_entries"):
        op.drop_table(table)
