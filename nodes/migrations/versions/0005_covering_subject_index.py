"""The subject index carries the columns a batch check counts by, so counting reads the
index alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

# As nodes.models.COUNTED_COLUMNS was when this revision was written.
COUNTED_COLUMNS = ("current", "scope", "domain", "decided_on", "removed_on", "status", "procedure", "category")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_records_subject", table_name="records")
    op.create_index("ix_records_subject", "records", ["subject_id", *COUNTED_COLUMNS])


def downgrade() -> None:
    op.drop_index("ix_records_subject", table_name="records")
    op.create_index("ix_records_subject", "records", ["subject_id"])
