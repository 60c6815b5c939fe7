"""Grants to organisations and redemptions that can be opened again.

Accounts belong to an organisation (its unified social credit code); organisations are
named in their own table, so that a grantor who types a code sees whose it is. A grant may
be made out to an organisation (any of its accounts redeems it) and remembers the preview
it was confirmed from (a preview no longer issues a report, so the report number cannot
tell two confirmations apart). Each redemption is kept: which grant, who redeemed it, the
report it served and when, under an unguessable id that reopens it without another use.

Revision ID: g0011
Revises: g0012
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "g0011"
down_revision = "g0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("code", sa.String(18), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("accounts", sa.Column("org_code", sa.String(18), nullable=True))
    op.add_column("grants", sa.Column("grantee_org", sa.String(18), nullable=True))
    op.add_column("grants", sa.Column("preview_id", sa.String(32), nullable=True))
    op.create_index("ix_grants_preview", "grants", ["preview_id"], unique=True)
    op.create_table(
        "grant_redemptions",
        sa.Column("redemption_id", sa.String(48), primary_key=True),
        sa.Column("grant_id", sa.String(32), nullable=False),
        sa.Column("report_no", sa.String(32), nullable=False),
        sa.Column("redeemed_by", sa.String(128), nullable=False),
        sa.Column("issuer", sa.String(200), nullable=False),
        sa.Column("org_code", sa.String(18), nullable=True),
        sa.Column("holder_hash", sa.String(64), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_grant_redemptions_report", "grant_redemptions", ["report_no"])
    op.create_index("ix_grant_redemptions_redeemer", "grant_redemptions", ["redeemed_by", "redeemed_at"])
    op.create_index("ix_grant_redemptions_org", "grant_redemptions", ["org_code", "redeemed_at"])


def downgrade() -> None:
    op.drop_table("grant_redemptions")
    op.drop_index("ix_grants_preview", "grants")
    with op.batch_alter_table("grants") as grants:
        grants.drop_column("preview_id")
        grants.drop_column("grantee_org")
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_column("org_code")
    op.drop_table("organisations")
