"""The node's tables. Record versions are appended, never overwritten.

Each change to a record (an update, a revocation, a credit repair) is a new row with the
next version; the previous version only loses its ``current`` flag. The autoincrementing
``seq`` orders every version the node ever stored and is the change feed's cursor.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


# The columns a batch check counts by, besides the subject: carried in the subject index
# (as keys after it: SQLite has no INCLUDE, and one definition serves both backends).
COUNTED_COLUMNS = ("current", "scope", "domain", "decided_on", "removed_on", "status", "procedure", "category")


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
        # A subject's records. Not partial: SQLite only uses a partial index when the
        # query repeats its condition word for word, and a subject has few versions
        # anyway. It also holds every column a batch check's counting reads
        # (:func:`nodes.store.counted_condition`), so that counting never visits the
        # table: most of a batch check's time went to fetching rows only to test them.
        Index("ix_records_subject", "subject_id", *COUNTED_COLUMNS),
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


class RegistrationRow(Base):
    """The region's register of market entities (市场主体登记信息): one entry per subject,
    as the register last published it. A load replaces an entry whose content changed
    (the register is a snapshot of who the entity is now, not a history of decisions);
    ``content_hash`` tells a changed entry from an unchanged one."""

    __tablename__ = "registrations"

    subject_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_rep: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300))
    authority: Mapped[str] = mapped_column(String(200))
    established_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(50))
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(300))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReplicaRecordRow(Base):
    """A peer region's record version, exactly as its change feed delivered it.

    Read-only here, and never served as this node's own data: the node's queries, batch
    checks and its own change feed read ``records`` only. Keyed like the origin's
    versions, by (origin, record_id, version); ``origin_seq`` is the version's place in
    the origin's feed. ``record`` is the ``credit.v1.CreditRecord`` message the origin
    sent, kept whole (a field or value this build does not know yet is not lost); the
    columns beside it are what the replica is looked up by.
    """

    __tablename__ = "replica_records"

    origin: Mapped[str] = mapped_column(String(10), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin_seq: Mapped[int] = mapped_column(BigInteger)
    current: Mapped[bool] = mapped_column(Boolean)
    subject_id: Mapped[str] = mapped_column(String(18))
    scope: Mapped[str] = mapped_column(String(40))
    record: Mapped[bytes] = mapped_column(LargeBinary)

    # The primary key serves the lookups by (origin, record_id) that move the current
    # flag. Unlike ``records``, no second unique index holds one current version per
    # record: the replica has one writer, which moves the flag in the transaction that
    # adds the version, and a third index on random keys would cost a quarter of the
    # time a catch-up takes.
    __table_args__ = (Index("ix_replica_subject", "subject_id"),)


class ReplicaCursorRow(Base):
    """How far this node's replica of one peer region has followed its change feed.

    ``last_seq`` moves in the same transaction as the rows it covers, so a change is
    applied once: a replayed stream skips every change at or below it.
    """

    __tablename__ = "replica_cursors"

    origin: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    last_seq: Mapped[int] = mapped_column(BigInteger)
    changes_applied: Mapped[int] = mapped_column(BigInteger)
    # When the last change was applied.
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # When the replica was last known to hold everything the origin had stored (the
    # origin said it had nothing after the changes applied): the replica's as-of time.
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The origin's own data as-of time and feed head, as it last reported them.
    origin_data_as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    origin_head_seq: Mapped[int] = mapped_column(BigInteger)
    # The origin's catalogue (credit.v1.Catalogue as JSON), fetched when following starts.
    catalogue: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReplicaDisputeRow(Base):
    """A peer region's record that is under an open objection at its owning node, as the
    origin's change feed last said (the whole set is replaced each time it changes).
    Replica answers mark these records 异议处理中 as the origin's own answers do."""

    __tablename__ = "replica_disputes"

    origin: Mapped[str] = mapped_column(String(10), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class ObjectionRow(Base):
    """An objection (异议) or a credit repair (信用修复) case on one of the node's records.

    The case number shown to people is derived from the region, the kind and ``id``
    (:func:`nodes.objections.case_number`). The case is never deleted; resolving it fills
    the resolution columns once, and ``new_version`` names the record version the outcome
    stored (none for a refused repair).
    """

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[str] = mapped_column(String(64))
    record_version: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[str] = mapped_column(String(18))
    reason: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attachment_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attachment_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attachment_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    filed_by: Mapped[str] = mapped_column(String(200))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    new_version: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_objections_subject", "subject_id", "state"),
        Index("ix_objections_state", "state", "id"),
        # At most one open case of each kind per record.
        Index(
            "uq_objections_open",
            "record_id",
            "kind",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )
