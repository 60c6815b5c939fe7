"""The node's tables. Record versions are appended, never overwritten.

Each change to a record (an update, a revocation, a credit repair) is a new row with the
next version; the previous version only loses its ``current`` flag. The autoincrementing
``seq`` orders every version the node ever stored and is the change feed's cursor.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class RecordRow(Base):
    __tablename__ = "records"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean)
    subject_id: Mapped[str] = mapped_column(String(18))
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(40))
    decision_no: Mapped[str] = mapped_column(String(200))
    authority: Mapped[str] = mapped_column(String(200))
    decided_on: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    procedure: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    publicity_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    removed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(300))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("uq_records_record_version", "record_id", "version", unique=True),
        # At most one current version per record.
        Index(
            "uq_records_current_record",
            "record_id",
            unique=True,
            sqlite_where=text("current"),
            postgresql_where=text("current"),
        ),
        # Not partial: SQLite only uses a partial index when the query repeats its
        # condition word for word, and a subject has few versions anyway.
        Index("ix_records_subject", "subject_id"),
    )


class IngestRow(Base):
    """One load of a file (or a seeding run): what came in and what became of it."""

    __tablename__ = "ingests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(300))
    file_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_added: Mapped[int] = mapped_column(Integer)
    rows_changed: Mapped[int] = mapped_column(Integer)
    rows_unchanged: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
