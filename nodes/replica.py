"""A node's read-only replicas of its peer regions' records.

A node configured with peers follows their change feeds (:mod:`nodes.replication`) and
keeps what they send in its own database: ``replica_records`` holds every version of
every peer record as the origin sent it, keyed by (origin, record_id, version) with a
``current`` flag like the node's own ``records``; ``replica_cursors`` holds, per peer, the last feed position
applied and how fresh the replica is. Nothing here is ever served as the node's own
data: the replica answers only questions that name the origin region
(``QueryReplica``) or ask about the other regions (``CheckJointDiscipline``).

Each change is applied exactly once. The rows of a group of changes and the cursor move
in one transaction; changes at or below the stored cursor are skipped, so a replayed
stream applies nothing twice; and the cursor update is conditional on the position the
applier started from, so two appliers racing on one database cannot both apply a group.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from google.protobuf import json_format
from sqlalchemy import Engine, Table, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from credit.catalogue import Catalogue, Scope
from credit.errors import CreditError
from credit.regions import Region
from credit.rules import CreditRecord
from federation import wire
from infra.db import SqlRunner, as_utc
from nodes.models import ReplicaCursorRow, ReplicaDisputeRow, ReplicaRecordRow
from nodes.store import in_values
from protos.credit.v1 import node_pb2 as pb

_T = TypeVar("_T")
log = structlog.get_logger("jjj.node")
replica_records: Table = ReplicaRecordRow.__table__  # type: ignore[assignment]
replica_cursors: Table = ReplicaCursorRow.__table__  # type: ignore[assignment]
replica_disputes: Table = ReplicaDisputeRow.__table__  # type: ignore[assignment]

# Column order of a stored replica version, shared by executemany and COPY.
_COLUMNS = ("origin", "record_id", "version", "origin_seq", "current", "subject_id", "scope", "record")
_RECORD_ID, _VERSION, _CURRENT = 1, 2, 4
_KEY = operator.itemgetter(_RECORD_ID, _VERSION)

_c = replica_records.c
_d = replica_disputes.c
# With each record, whether the origin last said it is under objection.
_DISPUTED = _d.record_id.is_not(None).label("disputed")
_WITH_DISPUTES = replica_records.outerjoin(replica_disputes, (_d.origin == _c.origin) & (_d.record_id == _c.record_id))
_CURRENT_FOR = (
    select(_c.record, _DISPUTED)
    .select_from(_WITH_DISPUTES)
    .where(_c.current, _c.origin == bindparam("origin"), _c.subject_id == bindparam("subject_id"))
)
# Wire scope numbers → the text the scope column holds (a number this build does not
# know is kept as such: the record itself is stored whole either way).
_SCOPES = {int(number): scope.value for number, scope in wire.SCOPE_FROM_PB.items()}


def _decode(origin: Region, blob: bytes, disputed: bool = False) -> CreditRecord:
    record = wire.record_from_pb(origin, pb.CreditRecord.FromString(blob))
    return replace(record, under_objection=True) if disputed else record


@dataclass(frozen=True, slots=True)
class ReplicaCursor:
    """How far the replica of one origin region has followed its feed, and how fresh it is."""

    origin: Region
    address: str
    last_seq: int
    changes_applied: int
    applied_at: datetime | None  # when the last change was applied
    synced_at: datetime | None  # the replica's as-of: last known to hold all the origin had
    origin_data_as_of: datetime | None  # the origin's own data as-of, as it last said
    origin_head_seq: int
    catalogue: Catalogue | None  # the origin's catalogue, as it last published it

    @property
    def lag(self) -> int:
        """Changes the origin had stored that the replica had not applied, when last told."""
        return max(0, self.origin_head_seq - self.last_seq)


@dataclass(frozen=True, slots=True)
class Received:
    """A batch from the feed and when it arrived."""

    batch: pb.ChangeBatch
    at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    skipped: int
    last_seq: int
    synced_at: datetime | None
    head_seq: int


class CursorMoved(Exception):
    """The stored cursor is not where the applier started: someone else applied changes."""


class ReplicaStore:
    """The replica tables in SQLite or PostgreSQL, through SQLAlchemy Core.

    Writes (:meth:`apply`) are synchronous, one transaction per group of changes, and
    run on the store's one writer thread (:meth:`write`), so that the replicas of
    several peers never contend for the database's write lock. Reads are awaited on a
    small thread pool, in autocommit on PostgreSQL, like
    :class:`nodes.store.SqlRecordStore`'s (both through :class:`infra.db.SqlRunner`).
    """

    def __init__(self, engine: Engine, *, region: Region, threads: int = 2) -> None:
        self.engine = engine
        self.region = region
        self._sqlite = engine.dialect.name == "sqlite"
        self._sql = SqlRunner(engine, name=f"replica-{region.value}", threads=threads, autocommit_reads=True)
        self._catalogues: dict[str, Catalogue] = {}
        self._cursors: tuple[float, dict[Region, ReplicaCursor]] = (0.0, {})

    async def write(self, work: Callable[[], _T]) -> _T:
        """Run a synchronous write on the writer thread, after the writes before it.

        A write cannot be stopped half-way: when the caller is cancelled, the
        cancellation waits until the write has committed or rolled back, so that once a
        follower has stopped nothing of it is still being written.

        Raises:
            RuntimeError: the store is closed.
            asyncio.CancelledError: the caller was cancelled (raised once the write ended).
            Whatever ``work`` raises.
        """
        return await self._sql.write(work)

    def close(self) -> None:
        """Stop the threads once the work given to them has ended (the engine belongs
        to the caller)."""
        self._sql.close()

    # ------------------------------------------------------------------ cursors

    def _catalogue(self, origin: str, text: str | None) -> Catalogue | None:
        if not text:
            return None
        catalogue = self._catalogues.get(text)
        if catalogue is None:
            try:
                catalogue = wire.catalogue_from_pb(json_format.Parse(text, pb.Catalogue()))
            except (CreditError, json_format.ParseError, KeyError, ValueError) as exc:
                # E.g. a domain this build does not know yet: the replica cannot be
                # evaluated under the origin's catalogue, so it answers nothing.
                log.warning("replica_catalogue_unusable", origin=origin, reason=str(exc))
                return None
            self._catalogues[text] = catalogue
        return catalogue

    def _cursor_from_row(self, row: Any) -> ReplicaCursor:
        catalogue = self._catalogue(row.origin, row.catalogue)
        return ReplicaCursor(
            origin=Region(row.origin),
            address=row.address,
            last_seq=row.last_seq,
            changes_applied=row.changes_applied,
            applied_at=as_utc(row.applied_at),
            synced_at=as_utc(row.synced_at),
            origin_data_as_of=as_utc(row.origin_data_as_of),
            origin_head_seq=row.origin_head_seq,
            catalogue=catalogue,
        )

    def read_cursors(self) -> dict[Region, ReplicaCursor]:
        """Every origin's cursor, read now."""
        with self._sql.reader.connect() as conn:
            found = {
                cursor.origin: cursor
                for cursor in (self._cursor_from_row(row) for row in conn.execute(select(replica_cursors)))
            }
        self._cursors = (time.monotonic(), found)
        return found

    async def cursors(self) -> dict[Region, ReplicaCursor]:
        """Every origin's cursor; read at most once a second (queries ask for it each time)."""
        checked, found = self._cursors
        if time.monotonic() - checked < 1.0:
            return found
        return await self._sql.call(self.read_cursors)

    async def cursor(self, origin: Region) -> ReplicaCursor | None:
        return (await self.cursors()).get(origin)

    def start(self, origin: Region, address: str) -> ReplicaCursor:
        """The origin's cursor, created at position 0 when following it for the first time."""
        if origin is self.region:
            raise ValueError("a node does not replicate itself")
        with self.engine.begin() as conn:
            row = conn.execute(select(replica_cursors).where(replica_cursors.c.origin == origin.value)).first()
            if row is not None and row.address == address:
                return self._cursor_from_row(row)
        try:
            with self.engine.begin() as conn:
                if row is None:
                    conn.execute(
                        replica_cursors.insert().values(
                            origin=origin.value, address=address, last_seq=0, changes_applied=0, origin_head_seq=0
                        )
                    )
                else:
                    conn.execute(
                        update(replica_cursors).where(replica_cursors.c.origin == origin.value).values(address=address)
                    )
        except IntegrityError:
            pass  # created at the same moment by another follower of the same origin
        with self.engine.connect() as conn:
            created = conn.execute(select(replica_cursors).where(replica_cursors.c.origin == origin.value)).one()
        self._cursors = (0.0, {})
        return self._cursor_from_row(created)

    def save_catalogue(self, origin: Region, catalogue: pb.Catalogue) -> None:
        """Keep the origin's published catalogue: replica answers are evaluated under it."""
        entries = pb.Catalogue(region=catalogue.region, version=catalogue.version, entries=catalogue.entries)
        text = json_format.MessageToJson(entries, indent=None, sort_keys=True)
        with self.engine.begin() as conn:
            conn.execute(
                update(replica_cursors)
                .where(replica_cursors.c.origin == origin.value, replica_cursors.c.catalogue.is_distinct_from(text))
                .values(catalogue=text)
            )
        self._cursors = (0.0, {})

    # ------------------------------------------------------------------ applying

    @staticmethod
    def _row(origin: str, change: pb.RecordChange) -> list[Any]:
        r = change.record
        scope = r.scope
        return [
            origin,
            r.record_id,
            r.version,
            change.seq,
            None,  # current: decided for the whole group
            r.subject_id,
            _SCOPES.get(scope) or str(scope),
            r.SerializeToString(),
        ]

    def apply(self, origin: Region, received: Sequence[Received], *, after_seq: int) -> Applied:
        """Apply a group of batches from ``origin``'s feed, the cursor standing at ``after_seq``.

        Changes at or below the cursor are skipped. The rows, the superseded versions'
        ``current`` flags and the cursor (position, freshness, the origin's head and
        data as-of) are written in one transaction.

        Raises:
            CursorMoved: the stored cursor is not at ``after_seq``; nothing was written.
        """
        rows: list[list[Any]] = []
        last = after_seq
        skipped = 0
        synced_at: datetime | None = None
        data_as_of: datetime | None = None
        disputes: pb.Disputes | None = None
        head = 0
        name = origin.value
        for item in received:
            batch = item.batch
            for change in batch.changes:
                if change.seq <= last:
                    skipped += 1
                    continue
                last = change.seq
                rows.append(self._row(name, change))
            if batch.caught_up:
                synced_at = item.at
            if batch.HasField("data_as_of"):
                data_as_of = batch.data_as_of.ToDatetime(tzinfo=UTC)
            if batch.HasField("disputes"):
                disputes = batch.disputes
            head = max(head, batch.head_seq)
        values: dict[str, Any] = {"last_seq": last, "origin_head_seq": max(head, last)}
        now = datetime.now(UTC)
        if rows:
            values["changes_applied"] = replica_cursors.c.changes_applied + len(rows)
            values["applied_at"] = now
        if synced_at is not None:
            values["synced_at"] = synced_at
        if data_as_of is not None:
            values["origin_data_as_of"] = data_as_of
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(replica_cursors)
                .where(replica_cursors.c.origin == name, replica_cursors.c.last_seq == after_seq)
                .values(**values)
            )
            if moved.rowcount != 1:
                raise CursorMoved(f"the cursor of {name} is no longer at {after_seq}")
            if rows:
                self._insert(conn, name, rows)
            if disputes is not None:
                self._replace_disputes(conn, name, disputes)
        self._cursors = (0.0, {})
        return Applied(len(rows), skipped, last, synced_at, max(head, last))

    @staticmethod
    def _replace_disputes(conn: Connection, origin: str, disputes: pb.Disputes) -> None:
        """Hold exactly the origin's records under objection that the feed last named."""
        wanted = set(disputes.record_ids)
        held = set(conn.execute(select(_d.record_id).where(_d.origin == origin)).scalars())
        gone = sorted(held - wanted)
        for start in range(0, len(gone), 5000):
            conn.execute(
                replica_disputes.delete().where(
                    _d.origin == origin, in_values(_d.record_id, gone[start : start + 5000], conn.dialect.name)
                )
            )
        new = sorted(wanted - held)
        if new:
            conn.execute(replica_disputes.insert(), [{"origin": origin, "record_id": r} for r in new])

    def _insert(self, conn: Connection, origin: str, rows: list[list[Any]]) -> None:
        true, false = (1, 0) if self._sqlite else (True, False)
        # Several versions of one record in a group: only the last stays current. A
        # record whose first version here is not its first has a current version stored.
        last: dict[str, int] = {}
        superseded: list[str] = []
        for index, row in enumerate(rows):
            record_id = row[_RECORD_ID]
            if record_id not in last and row[_VERSION] > 1:
                superseded.append(record_id)
            last[record_id] = index
        stored = []
        for index, row in enumerate(rows):
            row[_CURRENT] = true if last[row[_RECORD_ID]] == index else false
            stored.append(tuple(row))
        # In key order: the key indexes then take their inserts page by page.
        stored.sort(key=_KEY)
        dialect = conn.dialect.name
        for start in range(0, len(superseded), 5000):
            conn.execute(
                update(replica_records)
                .where(
                    replica_records.c.origin == origin,
                    replica_records.c.current,
                    in_values(replica_records.c.record_id, superseded[start : start + 5000], dialect),
                )
                .values(current=False)
            )
        if self._sqlite:
            placeholders = ", ".join("?" for _ in _COLUMNS)
            conn.exec_driver_sql(f"INSERT INTO replica_records ({', '.join(_COLUMNS)}) VALUES ({placeholders})", stored)
        else:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY replica_records ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for item in stored:
                    copy.write_row(item)

    # ------------------------------------------------------------------ reading

    async def current_for(self, origin: Region, subject_id: str) -> list[CreditRecord]:
        """The current version of every record of one subject in the origin's replica."""
        return await self._sql.with_connection(
            lambda conn: [
                _decode(origin, blob, disputed)
                for blob, disputed in conn.execute(_CURRENT_FOR, {"origin": origin.value, "subject_id": subject_id})
            ]
        )

    async def entries_for(self, subject_id: str, scopes: Sequence[Scope]) -> dict[Region, list[CreditRecord]]:
        """The current versions of one subject's records in the given scopes, per origin."""
        query = (
            select(_c.origin, _c.record, _DISPUTED)
            .select_from(_WITH_DISPUTES)
            .where(_c.current, _c.subject_id == subject_id, _c.scope.in_([s.value for s in scopes]))
        )

        def work(conn: Connection) -> dict[Region, list[CreditRecord]]:
            found: dict[Region, list[CreditRecord]] = {}
            for name, blob, disputed in conn.execute(query):
                origin = Region(name)
                found.setdefault(origin, []).append(_decode(origin, blob, disputed))
            return found

        return await self._sql.with_connection(work)

    def counts(self) -> dict[Region, tuple[int, int]]:
        """(versions, current records) held per origin."""
        query = select(_c.origin, func.count(), func.count().filter(_c.current)).group_by(_c.origin)
        with self._sql.reader.connect() as conn:
            return {Region(origin): (versions, current) for origin, versions, current in conn.execute(query)}
