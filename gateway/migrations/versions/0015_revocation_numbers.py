"""Ended sessions numbered in the order they were committed, so that each process reads
only those it has not seen yet instead of them all.

Revision ID: g0015
Revises: g0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "g0015"
down_revision = "g0014"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("session_revocations", sa.Column("seq", _SEQ, nullable=False, server_default="0"))
    op.create_index("ix_session_revocations_seq", "session_revocations", ["seq"])
    head = op.create_table(
        "session_revocation_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", _SEQ, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("session_revocation_head")
    op.drop_index("ix_session_revocations_seq", "session_revocations")
    with op.batch_alter_table("session_revocations") as batch:
        batch.drop_column("seq")
