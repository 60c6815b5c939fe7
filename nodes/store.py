"""Where a node keeps its records: the store seam, its SQL and in-memory forms.

Reading (``RecordStore``) is asynchronous and serves queries. Writing
(``RecordWriter``) is synchronous and bulk: ingest and seeding load hundreds of
thousands of rows per second through Core ``executemany`` on SQLite and ``COPY`` on
PostgreSQL, not through the ORM.

Versioning is the same everywhere (:func:`plan_versions`): a draft whose record is new is
stored as version 1; a draft whose content differs from the record's current version
becomes the next version and the old one stops being current; a draft identical to the
current version changes nothing. Nothing is ever overwritten or deleted.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from credit.cases import CaseKind, CaseState
from credit.catalogue import Scope
from credit.identifiers import SubjectKind
from credit.profiles import ReportProfile
from credit.regions import Region
from credit.rules import NOT_PENALISED_MARK, CreditRecord, Procedure, Provenance, RecordStatus, counts
from credit.window import ReportWindow
from infra.db import DriverStatement, SqlRunner, as_utc, dispose_when_idle
from nodes.models import IngestRow, ObjectionRow, RecordRow
from nodes.records import RecordDraft

records: Table = RecordRow.__table__  # type: ignore[assignment]
ingests: Table = IngestRow.__table__  # type: ignore[assignment]
objections: Table = ObjectionRow.__table__  # type: ignore[assignment]

# Column order of a stored version, shared by executemany and COPY.
_COLUMNS = (
    "record_id",
    "version",
    "current",
    "subject_id",
    "subject_kind",
    "subject_name",
    "domain",
    "scope",
    "decision_no",
    "authority",
    "decided_on",
    "category",
    "content",
    "procedure",
    "status",
    "publicity_until",
    "removed_on",
    "source",
    "ingested_at",
    "content_hash",
)
_LOOKUP_CHUNK = 5000


@dataclass(slots=True)
class WriteCounts:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    joined: int = 0  # rows joined into a record this load stored from an earlier batch

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.added += other.added
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.joined += other.joined
        return self


# A record version ready to store: (record_id, content_hash, *fields), the fields in
# ``_COLUMNS`` order from subject_id to removed_on, in storage form (enum values as text,
# dates as ISO text, which SQLite stores as such and COPY parses). Ingest workers build
# these directly; they are cheap to pickle and to turn into rows.
Prepared = tuple[Any, ...]


def prepare(draft: RecordDraft) -> Prepared:
    """A draft in the form the writer stores."""
    return (
        draft.record_id, draft.content_hash, draft.subject_id, draft.subject_kind.value, draft.subject_name,
        draft.domain, draft.scope.value, draft.decision_no, draft.authority, draft.decided_on.isoformat(),
        draft.category, draft.content, draft.procedure.value, draft.status.value,
        draft.publicity_until.isoformat() if draft.publicity_until else None,
        draft.removed_on.isoformat() if draft.removed_on else None,
    )  # fmt: skip


@dataclass(slots=True)
class VersionPlan:
    """What storing a batch means: new versions (item, version) and superseded records."""

    inserts: list[tuple[Prepared, int]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    counts: WriteCounts = field(default_factory=WriteCounts)


def plan_versions(items: Sequence[Prepared], current: Mapping[str, tuple[int, str]]) -> VersionPlan:
    """Decide the versions a batch becomes. Items start with (record_id, content_hash).

    ``current`` maps record ids to their current (version, content hash). Several
    items of one record in a batch are its history, in order: the items up to the last
    one equal to the current version are already stored, and only those after it become
    new versions. So loading the same file twice stores nothing the second time, even
    when the file holds a record's whole history.
    """
    plan = VersionPlan()
    seen = Counter(item[0] for item in items)
    histories: dict[str, list[Prepared]] = {}
    for item in items:
        record_id = item[0]
        if seen[record_id] == 1 and record_id not in current:
            plan.inserts.append((item, 1))  # new, once: the common case, decided at once
        else:
            histories.setdefault(record_id, []).append(item)
    plan.counts.added = len(plan.inserts)
    for record_id, history in histories.items():
        known = current.get(record_id)
        version, last_hash = known if known is not None else (0, "")
        start = 0
        if known is not None:
            for i in range(len(history) - 1, -1, -1):
                if history[i][1] == last_hash:
                    start = i + 1
                    break
        plan.counts.unchanged += start
        for item in history[start:]:
            if item[1] == last_hash:
                plan.counts.unchanged += 1
                continue
            if version == 0:
                plan.counts.added += 1
            else:
                plan.counts.changed += 1
                if known is not None and version == known[0]:
                    plan.superseded.append(record_id)
            version += 1
            last_hash = item[1]
            plan.inserts.append((item, version))
    return plan


class RecordStore(Protocol):
    """Read side of a node's records."""

    region: Region

    async def current_for(self, subject_id: str) -> list[CreditRecord]:
        """The current version of every record of one subject, those with an open
        objection against them marked ``under_objection`` (a store that keeps no cases
        marks none)."""

    async def current_for_many(self, subject_ids: Sequence[str]) -> dict[str, list[CreditRecord]]:
        """Current records of many subjects; subjects with none are absent."""

    async def counted(
        self, subject_ids: Sequence[str], profile: ReportProfile, window: ReportWindow
    ) -> dict[str, list[tuple[str, Scope, int]]]:
        """Records the profile counts in the window, per subject, domain and scope
        (:func:`credit.rules.counts`); subjects with none are absent."""

    async def data_as_of(self) -> datetime | None:
        """When the node's data last changed, or None when it holds none."""

    async def changes(self, after_seq: int, limit: int) -> list[tuple[int, CreditRecord]]:
        """Up to ``limit`` stored versions after ``after_seq``, in order."""

    async def head_seq(self) -> int:
        """The highest ``seq`` stored (0 when empty)."""

    async def feed(self, after_seq: int, limit: int) -> list[FeedRow]:
        """:meth:`changes` in the raw form the change feed encodes (:data:`FeedRow`)."""


# A stored version as the change feed reads it: the ``records`` columns in table order
# (seq first), without decoding into a CreditRecord. Dates and the ingest time come as
# the driver gives them: ISO text from SQLite (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS.ffffff``
# in UTC), ``date`` and ``datetime`` objects from PostgreSQL and the memory store.
FeedRow = tuple[Any, ...]


class RecordWriter(Protocol):
    def write(self, drafts: Sequence[RecordDraft], *, source: str, now: datetime) -> WriteCounts:
        """Store a batch of drafts as new versions, atomically."""


def in_values(column: ColumnElement[str], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """``column IN values`` with the values as one text parameter: a list of thousands
    is neither compiled into thousands of placeholders nor limited by SQLite's parameter
    count, and encoding it is one C call (a PostgreSQL array parameter costs a
    regular-expression check per element). Values never contain control characters:
    identifiers are validated, source record ids checked at ingest."""
    return _in_parameter(column, literal(encode_values(values, dialect)), dialect)


def encode_values(values: Sequence[str], dialect: str) -> str:
    """A list of values as the one text parameter :func:`in_values` compares with."""
    return _SEPARATOR.join(values) if dialect == "postgresql" else json.dumps(list(values))


def _in_parameter(column: ColumnElement[str], parameter: ColumnElement[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # IN (SELECT unnest(…)) rather than = ANY(array): PostgreSQL then probes the
        # index once per value in a nested loop (an index-only scan where the index
        # covers the query), where ANY over thousands of values made it scan the table
        # or a bitmap of it, several times slower.
        each: Select[tuple[Any]] = select(func.unnest(func.string_to_array(parameter, literal(_SEPARATOR))))
    else:
        each = select(literal_column("value")).select_from(func.json_each(parameter))
    return column.in_(each.scalar_subquery())


_SEPARATOR = "\x1f"


_LIST_SCOPES = [s.value for s in Scope if s.is_list]


def counted_condition(profile: ReportProfile, window: ReportWindow) -> ColumnElement[bool]:
    """:func:`credit.rules.counts` as a SQL condition, so that a batch check counts in
    the database instead of loading every record. The store contract tests check that the
    two agree on the same records."""
    c = records.c
    conditions: list[ColumnElement[bool]] = [c.scope.in_([s.value for s in profile.scopes])]
    rule = profile.exclude
    if rule.revoked:
        conditions.append(c.status != RecordStatus.REVOKED.value)
    if rule.credit_repaired:
        conditions.append(c.status != RecordStatus.REPAIRED.value)
    if rule.simplified_procedure:
        conditions.append(c.procedure != Procedure.SIMPLIFIED.value)
    if rule.not_penalised:
        conditions.append(
            not_(and_(c.scope == Scope.ADMINISTRATIVE_PENALTY.value, c.category.contains(NOT_PENALISED_MARK)))
        )
    conditions.append(
        or_(
            and_(
                c.scope.in_(_LIST_SCOPES),
                c.decided_on <= window.cutoff,
                or_(c.removed_on.is_(None), c.removed_on >= window.start),
            ),
            and_(c.scope.not_in(_LIST_SCOPES), c.decided_on >= window.start, c.decided_on <= window.cutoff),
        )
    )
    return and_(*conditions)


# Value → member by dict: much cheaper than calling the enum, on the batch hot path.
_KINDS = {k.value: k for k in SubjectKind}
_SCOPES = {s.value: s for s in Scope}
_PROCEDURES = {p.value: p for p in Procedure}
_STATUSES = {s.value: s for s in RecordStatus}


def _day(value: Any) -> Any:
    # A date as SQLAlchemy gives it, or as the SQLite driver does (ISO text).
    return date.fromisoformat(value) if value.__class__ is str else value


def record_from_row(region: Region, row: Sequence[Any], under_objection: bool = False) -> CreditRecord:
    """A stored version from its row in table column order, as SQLAlchemy or the driver
    itself gives it (on SQLite, dates and times as ISO text).

    Raises:
        ValueError, KeyError: a row that is not a stored version.
    """
    # Positional unpacking in table column order: attribute access on a Row costs a
    # lookup per field, which dominated batch checks.
    (
        _seq,
        record_id,
        version,
        _current,
        subject_id,
        subject_kind,
        subject_name,
        domain,
        scope,
        decision_no,
        authority,
        decided_on,
        category,
        content,
        procedure,
        status,
        publicity_until,
        removed_on,
        source,
        ingested_at,
        content_hash,
    ) = tuple(row)
    return CreditRecord(
        record_id,
        version,
        region,
        subject_id,
        _KINDS[subject_kind],
        subject_name,
        domain,
        _SCOPES[scope],
        decision_no,
        authority,
        _day(decided_on),
        category,
        content,
        _PROCEDURES[procedure],
        _STATUSES[status],
        publicity_until and _day(publicity_until),
        removed_on and _day(removed_on),
        Provenance(source, _utc_stamp(ingested_at), content_hash),
        bool(under_objection),
    )


def _utc_stamp(value: Any) -> datetime:
    stamp: datetime = datetime.fromisoformat(value) if value.__class__ is str else value
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


# Built once: compiled once and cached by SQLAlchemy, executed with a parameter. With
# each record, whether an objection against it is open (异议处理中): read in the same
# statement, so a record and its mark come from one snapshot, and in one round trip.
# The open case is found through the partial index of open cases by record (at most one
# open objection per record), which is why state and kind are literals, not parameters.
_o = objections.c
_UNDER_OBJECTION = (
    select(literal_column("1"))
    .where(
        _o.record_id == records.c.record_id,
        _o.kind == literal_column(f"'{CaseKind.OBJECTION.value}'"),
        _o.state == literal_column(f"'{CaseState.OPEN.value}'"),
    )
    .exists()
    .label("under_objection")
)
_CURRENT_FOR = select(records, _UNDER_OBJECTION).where(
    records.c.current, records.c.subject_id == bindparam("subject_id")
)
_HEAD_SEQ = select(func.max(records.c.seq))
_FEED = f"SELECT {', '.join(c.name for c in records.c)} FROM records WHERE seq > {{mark}} ORDER BY seq LIMIT {{mark}}"


class SqlRecordStore:
    """Records in SQLite or PostgreSQL through SQLAlchemy Core.

    Each read is one unit of work on a small pool of worker threads with a synchronous
    engine, awaited by the event loop (:class:`infra.db.SqlRunner`, which says why),
    in autocommit on PostgreSQL. One-subject lookups and other point reads are small:
    on SQLite they run on the event loop itself.
    """

    def __init__(self, engine: Engine, *, region: Region, threads: int = 4) -> None:
        self._sql = SqlRunner(engine, name=f"store-{region.value}", threads=threads, autocommit_reads=True)
        # The engine reads go through: in autocommit on PostgreSQL.
        self.engine = self._sql.reader
        self.region = region
        self._as_of: tuple[float, datetime | None] = (0.0, None)
        self._counting_cache: dict[tuple[str, int, date, date], tuple[str, Any, int | str]] = {}
        self._current_for = DriverStatement(_CURRENT_FOR, self.engine.dialect)

    def close(self) -> None:
        """Stop the worker threads and close the engine's connections."""
        self._sql.close()
        dispose_when_idle(self.engine)

    async def current_for(self, subject_id: str) -> list[CreditRecord]:
        # Through the driver: SQLAlchemy's execution cost several times the lookup.
        region = self.region
        rows = await self._sql.with_driver(
            lambda driver: self._current_for.rows(driver, subject_id=subject_id), small=True
        )
        return [record_from_row(region, row[:-1], row[-1]) for row in rows]

    async def current_for_many(self, subject_ids: Sequence[str]) -> dict[str, list[CreditRecord]]:
        region = self.region

        def work(conn: Connection) -> dict[str, list[CreditRecord]]:
            found: dict[str, list[CreditRecord]] = {}
            for start in range(0, len(subject_ids), _LOOKUP_CHUNK):
                chunk = subject_ids[start : start + _LOOKUP_CHUNK]
                query = select(records).where(
                    records.c.current, in_values(records.c.subject_id, chunk, conn.dialect.name)
                )
                for row in conn.execute(query):
                    found.setdefault(row.subject_id, []).append(record_from_row(region, row))
            return found

        return await self._sql.with_connection(work)

    def _counting(self, profile: ReportProfile, window: ReportWindow) -> tuple[str, Any, int | str]:
        """The counting statement for a profile and window, compiled once into the
        driver's SQL text with its parameters; the subjects' slot is left to fill.

        Compiling a statement whose condition holds a dozen values (and expanding its
        IN lists) on every call cost a quarter of a batch check's counting.
        """
        key = (profile.id, profile.version, window.start, window.cutoff)
        cached = self._counting_cache.get(key)
        if cached is not None:
            return cached
        c = records.c
        dialect = self.engine.dialect
        subjects = bindparam("subjects", value="", type_=String())
        condition = counted_condition(profile, window)
        if dialect.name == "postgresql":
            condition = _inlined(condition)
        query = (
            select(c.subject_id, c.domain, c.scope, func.count())
            .where(c.current, _in_parameter(c.subject_id, subjects, dialect.name), condition)
            .group_by(c.subject_id, c.domain, c.scope)
        )
        compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        params: Any
        slot: int | str
        if compiled.positiontup is not None:
            names = list(compiled.positiontup)
            params, slot = [values[name] for name in names], names.index("subjects")
        else:
            params, slot = dict(values), "subjects"
        sql = str(compiled)
        if dialect.name == "sqlite":
            sql = _searched_once(sql)
        built = (sql, params, slot)
        if len(self._counting_cache) > 64:
            self._counting_cache.clear()
        self._counting_cache[key] = built
        return built

    async def counted(
        self, subject_ids: Sequence[str], profile: ReportProfile, window: ReportWindow
    ) -> dict[str, list[tuple[str, Scope, int]]]:
        sql, base, slot = self._counting(profile, window)
        dialect = self.engine.dialect.name

        # Straight on the driver's cursor, every row at once: SQLAlchemy's execution and
        # its row-at-a-time fetching cost more than the rest of reading a chunk's counts.
        def work(driver: Any) -> dict[str, list[tuple[str, Scope, int]]]:
            found: dict[str, list[tuple[str, Scope, int]]] = {}
            cursor = driver.cursor()
            try:
                for start in range(0, len(subject_ids), _LOOKUP_CHUNK):
                    params = base.copy()
                    params[slot] = encode_values(subject_ids[start : start + _LOOKUP_CHUNK], dialect)
                    cursor.execute(sql, tuple(params) if isinstance(params, list) else params)
                    for subject_id, domain, scope, count in cursor.fetchall():
                        found.setdefault(subject_id, []).append((domain, _SCOPES[scope], count))
            finally:
                cursor.close()
            return found

        return await self._sql.with_driver(work)

    async def data_as_of(self) -> datetime | None:
        # Read at most once a second: every query reports it, and it changes only when
        # an ingest finishes.
        checked, value = self._as_of
        if time.monotonic() - checked < 1.0:
            return value
        latest = await self._sql.with_connection(
            lambda conn: conn.execute(select(func.max(ingests.c.finished_at))).scalar(), small=True
        )
        value = as_utc(latest)
        self._as_of = (time.monotonic(), value)
        return value

    async def changes(self, after_seq: int, limit: int) -> list[tuple[int, CreditRecord]]:
        query = select(records).where(records.c.seq > after_seq).order_by(records.c.seq).limit(limit)
        region = self.region
        return await self._sql.with_connection(
            lambda conn: [(row.seq, record_from_row(region, row)) for row in conn.execute(query)]
        )

    async def head_seq(self) -> int:
        return await self._sql.with_connection(lambda conn: conn.execute(_HEAD_SEQ).scalar() or 0, small=True)

    async def feed(self, after_seq: int, limit: int) -> list[FeedRow]:
        # Straight from the driver's cursor: SQLAlchemy's rows, and its SQLite date and
        # time parsing, would cost more than the rest of the feed together.
        def work(conn: Connection) -> list[FeedRow]:
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(_FEED.format(mark=mark), (after_seq, limit))
                return list(cursor.fetchall())
            finally:
                cursor.close()

        return await self._sql.with_connection(work)


def _inlined(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` with its values written into the SQL text instead of bound.

    The driver prepares a statement it runs often (psycopg, from the fifth run on a
    connection), and PostgreSQL then plans it once for any parameters: the window's
    dates no longer bound the index search, each scope list is rebuilt as an array for
    every index entry tested, and the grouping is planned as a sort. The profile's
    values and the window's dates are fixed for a statement (one is built per profile
    and window), so written in, the plan kept is the one planned for them: a third less
    time counting a 5,000-subject chunk whose subjects have records.
    """

    def inline(bind: BindParameter[Any]) -> None:
        bind.literal_execute = True

    inlined: ColumnElement[bool] = visitors.cloned_traverse(condition, {}, {"bindparam": inline})
    return inlined


def _searched_once(sql: str) -> str:
    """The SQLite counting statement with the subject index searched once per subject:
    given ``current = 1`` and ``scope IN (…)``, SQLite searches the index (subject,
    current, scope, …) once per subject and counted scope, five times as often; a unary
    plus keeps the two terms out of the search, and they are tested on the index entries
    read (a subject has a few). A quarter less time counting a 5,000-subject chunk on a
    1 M-record node. The statement is left as it is when the terms are not found."""
    for term in ("records.current = 1", "records.scope IN ("):
        if term not in sql:
            return sql
    return sql.replace("records.current = 1", "+records.current = 1", 1).replace(
        "records.scope IN (", "+records.scope IN (", 1
    )


def lock_versions(conn: Connection) -> None:
    """Take the right to store record versions until the transaction ends (reads go
    on). On PostgreSQL versions then take their seq in commit order, so a peer following
    the change feed past seq N can never miss a smaller seq that another writer commits
    later; SQLite has one writer at a time anyway."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE records IN SHARE ROW EXCLUSIVE MODE")


class SqlRecordWriter:
    """Bulk writer over a synchronous engine; one transaction per :meth:`load`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(
        self,
        batches: Iterable[Sequence[RecordDraft]],
        *,
        source: str,
        file_sha256: str = "",
        rejected: Callable[[], int] = lambda: 0,
        now: datetime | None = None,
    ) -> WriteCounts:
        """Store every batch of drafts in one transaction and log the load; all or nothing.

        ``rejected`` is asked for the number of rejected input rows once every batch has
        been read, for the ingest log.
        """
        prepared = ([prepare(d) for d in batch] for batch in batches)
        return self.load_prepared(prepared, source=source, file_sha256=file_sha256, rejected=rejected, now=now)

    def load_prepared(
        self,
        batches: Iterable[Sequence[Prepared]],
        *,
        source: str,
        file_sha256: str = "",
        rejected: Callable[[], int] = lambda: 0,
        now: datetime | None = None,
    ) -> WriteCounts:
        """:meth:`load` for items already in storage form (:func:`prepare`).

        Loading into an empty table builds the secondary indexes once at the end instead
        of row by row, which is several times faster; it happens inside the same
        transaction, so a failed load leaves them as they were.
        """
        started = now or datetime.now(UTC)
        totals = WriteCounts()
        read = 0
        with self.engine.begin() as conn:
            lock_versions(conn)
            deferred = []
            if conn.execute(select(records.c.seq).limit(1)).first() is None:
                deferred = [index for index in records.indexes if index.name in _DEFERRED_INDEXES]
                for index in deferred:
                    index.drop(conn)
            for batch in batches:
                read += len(batch)
                totals += self._write(conn, batch, source=source, now=started)
            for index in deferred:
                index.create(conn)
            conn.execute(
                ingests.insert().values(
                    source=source,
                    file_sha256=file_sha256,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    rows_read=read + rejected(),
                    rows_added=totals.added,
                    rows_changed=totals.changed,
                    rows_unchanged=totals.unchanged,
                    rows_rejected=rejected(),
                )
            )
        if self.engine.dialect.name == "postgresql" and totals.added + totals.changed >= _VACUUM_AFTER:
            # Mark the new rows all-visible and refresh the statistics now rather than
            # whenever autovacuum comes round: until then PostgreSQL's index-only scans
            # (a batch check's counting) visit the table for every new row.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE) records")
        return totals

    def write(self, drafts: Sequence[RecordDraft], *, source: str, now: datetime) -> WriteCounts:
        return self.load([drafts], source=source, now=now)

    def _write(self, conn: Any, items: Sequence[Prepared], *, source: str, now: datetime) -> WriteCounts:
        ids = list({item[0] for item in items})
        current: dict[str, tuple[int, str]] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            query = select(records.c.record_id, records.c.version, records.c.content_hash).where(
                records.c.current, in_values(records.c.record_id, chunk, conn.dialect.name)
            )
            current.update((r.record_id, (r.version, r.content_hash)) for r in conn.execute(query))
        plan = plan_versions(items, current)
        if plan.superseded:
            conn.execute(
                update(records)
                .where(records.c.current, in_values(records.c.record_id, plan.superseded, conn.dialect.name))
                .values(current=False)
            )
        if not plan.inserts:
            return plan.counts
        sqlite = conn.dialect.name == "sqlite"
        # The text form each backend's timestamp column reads back.
        stamp = (
            now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            if sqlite
            else now.astimezone(UTC).isoformat()
        )
        true, false = (1, 0) if sqlite else (True, False)
        # Several versions of one record in a batch: only the last stays current.
        last = {item[0]: version for item, version in plan.inserts}
        single = len(last) == len(plan.inserts)
        tail = (source, stamp)
        rows = [
            (item[0], v, true if single or last[item[0]] == v else false, *item[2:], *tail, item[1])
            for item, v in plan.inserts
        ]
        if sqlite:
            placeholders = ", ".join("?" for _ in _COLUMNS)
            conn.exec_driver_sql(f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows)
        else:
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY records ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return plan.counts


_VACUUM_AFTER = 10_000  # rows stored by one load
_DEFERRED_INDEXES = frozenset({"uq_records_current_record", "ix_records_subject"})


class MemoryRecordStore:
    """The in-memory twin of the SQL store and writer, for tests and tools."""

    def __init__(self, *, region: Region) -> None:
        self.region = region
        self._versions: list[tuple[int, CreditRecord]] = []
        self._current: dict[str, CreditRecord] = {}
        self._as_of: datetime | None = None

    def write(self, drafts: Sequence[RecordDraft], *, source: str, now: datetime) -> WriteCounts:
        current = {
            rid: (r.version, r.provenance.content_hash if r.provenance else "") for rid, r in self._current.items()
        }
        plan = plan_versions([(d.record_id, d.content_hash, d) for d in drafts], current)
        for item, version in plan.inserts:
            draft: RecordDraft = item[2]
            record = CreditRecord(
                record_id=draft.record_id,
                version=version,
                region=self.region,
                subject_id=draft.subject_id,
                subject_kind=draft.subject_kind,
                subject_name=draft.subject_name,
                domain=draft.domain,
                scope=draft.scope,
                decision_no=draft.decision_no,
                authority=draft.authority,
                decided_on=draft.decided_on,
                category=draft.category,
                content=draft.content,
                procedure=draft.procedure,
                status=draft.status,
                publicity_until=draft.publicity_until,
                removed_on=draft.removed_on,
                provenance=Provenance(source, now, draft.content_hash),
            )
            self._versions.append((len(self._versions) + 1, record))
            self._current[draft.record_id] = record
        self._as_of = now
        return plan.counts

    async def current_for(self, subject_id: str) -> list[CreditRecord]:
        return [r for r in self._current.values() if r.subject_id == subject_id]

    async def current_for_many(self, subject_ids: Sequence[str]) -> dict[str, list[CreditRecord]]:
        wanted = set(subject_ids)
        found: dict[str, list[CreditRecord]] = {}
        for record in self._current.values():
            if record.subject_id in wanted:
                found.setdefault(record.subject_id, []).append(record)
        return found

    async def counted(
        self, subject_ids: Sequence[str], profile: ReportProfile, window: ReportWindow
    ) -> dict[str, list[tuple[str, Scope, int]]]:
        wanted = set(subject_ids)
        tally: dict[str, Counter[tuple[str, Scope]]] = {}
        for record in self._current.values():
            if record.subject_id in wanted and counts(record, profile, window):
                tally.setdefault(record.subject_id, Counter())[(record.domain, record.scope)] += 1
        return {sid: [(d, s, n) for (d, s), n in hits.items()] for sid, hits in tally.items()}

    async def data_as_of(self) -> datetime | None:
        return self._as_of

    async def changes(self, after_seq: int, limit: int) -> list[tuple[int, CreditRecord]]:
        return [(seq, r) for seq, r in self._versions if seq > after_seq][:limit]

    async def head_seq(self) -> int:
        return len(self._versions)

    async def feed(self, after_seq: int, limit: int) -> list[FeedRow]:
        rows = []
        for seq, r in await self.changes(after_seq, limit):
            p = r.provenance
            rows.append(
                (
                    seq,
                    r.record_id,
                    r.version,
                    True,
                    r.subject_id,
                    r.subject_kind.value,
                    r.subject_name,
                    r.domain,
                    r.scope.value,
                    r.decision_no,
                    r.authority,
                    r.decided_on,
                    r.category,
                    r.content,
                    r.procedure.value,
                    r.status.value,
                    r.publicity_until,
                    r.removed_on,
                    p.source if p else "",
                    p.ingested_at if p else None,
                    p.content_hash if p else "",
                )
            )
        return rows
