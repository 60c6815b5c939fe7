"""The gateway's tables: the registry of issued reports and the accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ReportRow(Base):
    """Every issued report, kept for ten years (报告保存10年)."""

    __tablename__ = "reports"

    report_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    verification_code: Mapped[str] = mapped_column(String(24), unique=True)
    subject_id: Mapped[str] = mapped_column(String(18))
    subject_kind: Mapped[str] = mapped_column(String(10))
    profile: Mapped[str] = mapped_column(String(40))
    verdict: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    jws: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # valid / superseded / revoked
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_reports_subject", "subject_id"),)


class AccountRow(Base):
    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    display_name: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # An agency officer's region (whose authorities' objections the officer decides);
    # None: every region (the federation's credit centre).
    region: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # The organisation the account belongs to (its unified social credit code): a grant
    # made out to the organisation is redeemed by any of its accounts.
    org_code: Mapped[str | None] = mapped_column(String(18), nullable=True)
    # A person's full name as verified when the account was opened (实名), shown to that
    # person on their own reports; the records publish it masked (李*华) for everyone else.
    full_name: Mapped[str | None] = mapped_column(String(100), nullable=True)


class OrganisationRow(Base):
    """An organisation whose accounts use this gateway (a bank, a tender office), by its
    unified social credit code: a grantor who types the code is shown the name."""

    __tablename__ = "organisations"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginAttemptRow(Base):
    """A login attempt from one client address, counted before its password is checked
    and forgotten when the password was right: the throttle every front door and every
    gateway process on this database shares."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)


class SessionRevocationRow(Base):
    """An ended session: ``jti:<id>`` (logged out: that token no longer counts) or
    ``user:<name>`` (every token of the account issued before ``after`` no longer counts:
    its role changed or it was removed). Kept until no token it ends can still be live.
    ``seq`` numbers the revocations in the order they were committed (from
    :class:`SessionRevocationHeadRow`), so that a process reads only those it has not
    seen; rows from before the numbering hold 0."""

    __tablename__ = "session_revocations"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)

    __table_args__ = (Index("ix_session_revocations_seq", "seq"),)


class SessionRevocationHeadRow(Base):
    """One row: the number of the last revocation. A revocation takes the next number by
    updating this row in its own transaction, which holds the row until it commits, so
    numbers become visible in order: a reader that has seen number n has seen every one
    below it."""

    __tablename__ = "session_revocation_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))


class GrantRow(Base):
    """An authorisation grant (授权查询): the code is kept only as its SHA-256."""

    __tablename__ = "grants"

    grant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    subject_id: Mapped[str] = mapped_column(String(18))
    subject_kind: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(64))
    grantee: Mapped[str | None] = mapped_column(String(64), nullable=True)  # one account
    grantee_org: Mapped[str | None] = mapped_column(String(18), nullable=True)  # any account of an organisation
    purpose: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(8))  # fixed: one issued report; fresh: a new one at each use
    # fixed: the report issued when the grant was confirmed; fresh: empty (grants stored
    # before previews stopped issuing reports hold the previewed report).
    report_no: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(40))
    years: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The preview the grant was confirmed from: a preview is confirmed once.
    preview_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        Index("ix_grants_subject", "subject_id"),
        Index("ix_grants_preview", "preview_id", unique=True),
    )


class RedemptionRow(Base):
    """One use of a grant: the report it served to whom, kept so that the redeemer can
    open it again (and download it) without using the grant again."""

    __tablename__ = "grant_redemptions"

    redemption_id: Mapped[str] = mapped_column(String(48), primary_key=True)  # unguessable
    grant_id: Mapped[str] = mapped_column(String(32))
    report_no: Mapped[str] = mapped_column(String(32))
    redeemed_by: Mapped[str] = mapped_column(String(128))  # the account, or anonymous@address
    issuer: Mapped[str] = mapped_column(String(200))  # the instance whose session it was; empty: anonymous
    org_code: Mapped[str | None] = mapped_column(String(18), nullable=True)  # a grant to an organisation
    # An anonymous redeemer's browser holds the secret whose SHA-256 this is.
    holder_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    redeemed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_grant_redemptions_report", "report_no"),
        Index("ix_grant_redemptions_redeemer", "redeemed_by", "redeemed_at"),
        Index("ix_grant_redemptions_org", "org_code", "redeemed_at"),
    )


class BatchJobRow(Base):
    """A batch check (信用互查互认): who asked, why, and how far it got."""

    __tablename__ = "batch_jobs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(200))
    profile: Mapped[str] = mapped_column(String(40))
    years: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # running / done
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    counts: Mapped[str | None] = mapped_column(Text, nullable=True)  # the table's counts (JSON), once done

    __table_args__ = (Index("ix_batch_jobs_created_by", "created_by", "created_at"),)


class BatchInputRow(Base):
    """A job's list, a chunk per row (its entries as a JSON array; rows stored before that hold
    them joined by newlines, and are still read)."""

    __tablename__ = "batch_inputs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    subjects: Mapped[str] = mapped_column(Text)
    names: Mapped[str | None] = mapped_column(Text, nullable=True)  # the list's names (JSON array), if it had any
    duplicate_of: Mapped[str | None] = mapped_column(Text, nullable=True)  # {offset: first row's 序号} (JSON)


class BatchResultRow(Base):
    """A region's answer for one chunk, as the node sent it; written once."""

    __tablename__ = "batch_results"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    answer: Mapped[bytes] = mapped_column(LargeBinary)
    failure: Mapped[str] = mapped_column(Text)


class ReportRecordRow(Base):
    """Which record versions each report contains: a later version supersedes the report."""

    __tablename__ = "report_records"

    report_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_report_records_record", "region", "record_id"),)


class FeedCursorRow(Base):
    """How far the gateway has followed each region's change feed."""

    __tablename__ = "feed_cursors"

    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
