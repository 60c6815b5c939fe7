"""Objections and credit repair (异议、信用修复) on a node's own records.

A subject objects to one of its records (the record is wrong) or applies for its credit
repair (the obligations are fulfilled), with a reason and optionally one attachment; the
case is kept here, at the node that owns the record. While an objection is open the
node marks the record ``under_objection`` in every answer, and reports print 异议处理中.

The owning authority decides. An objection is upheld (the record stands), corrected
(some of its fields change) or revoked (status REVOKED); a repair is granted (status
REPAIRED) or refused. The authority may also apply a credit repair directly, as its own
event. Every outcome except a refusal stores the record's next version, in the same
transaction as the case's resolution, so it goes out on the change feed like any other
change: peers' replicas follow it, and the gateway marks earlier reports that contained
the record as superseded.

A later load of the authority's source file that still holds a record's old content
stores that content again as a newer version, as every load does: the authority corrects
its own system too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from credit.cases import (
    MAX_NOTE,
    MAX_REASON,
    RESOLUTIONS,
    Attachment,
    Case,
    CaseKind,
    CaseState,
    Correction,
    Resolution,
    case_number,
    outcome_of,
    parse_case_number,
    required_text,
)
from credit.errors import FailedPrecondition, InvalidInput, NotFound
from credit.regions import Region
from credit.rules import CreditRecord, RecordStatus
from infra.db import SqlRunner, as_utc
from nodes.models import IngestRow, ObjectionRow, RecordRow
from nodes.records import content_hash
from nodes.store import lock_versions, record_from_row

MAX_LIST = 1000  # cases per listing
objections: Table = ObjectionRow.__table__  # type: ignore[assignment]
records: Table = RecordRow.__table__  # type: ignore[assignment]
ingests: Table = IngestRow.__table__  # type: ignore[assignment]


class ObjectionDesk:
    """The cases of one node, in its database (SQLite or PostgreSQL).

    Each call is one unit of work on a small thread pool (:class:`infra.db.SqlRunner`),
    like the record store; the set of records under objection is a small read, run
    inline on SQLite. A resolution and the record version it stores commit together. The
    record store marks a subject's records under an open objection as it reads them.
    """

    def __init__(self, engine: Engine, *, region: Region, threads: int = 2) -> None:
        self.engine = engine
        self.region = region
        self._sql = SqlRunner(engine, name=f"objections-{region.value}", threads=threads)
        self._sqlite = engine.dialect.name == "sqlite"

    def close(self) -> None:
        """Stop the worker threads once the work given to them has ended (the engine
        belongs to the caller)."""
        self._sql.close()

    # Reading

    async def disputed(self) -> frozenset[str]:
        """Every record of the region that has an open objection (what the change feed
        tells peers' replicas, so that their answers carry the mark too)."""

        def work() -> frozenset[str]:
            with self.engine.connect() as conn:
                return frozenset(conn.execute(_OPEN_ALL).scalars())

        return await self._sql.call(work, small=True)

    async def list(
        self,
        *,
        subject_id: str | None = None,
        state: CaseState | None = None,
        kind: CaseKind | None = None,
        limit: int = 100,
        before: str = "",
    ) -> list[Case]:
        """Cases, newest first: one subject's or every subject's.

        Raises:
            InvalidInput: a limit above 1,000, or ``before`` that is not a case number.
        """
        if limit <= 0 or limit > MAX_LIST:
            raise InvalidInput.for_field("limit", f"每次最多 {MAX_LIST} 件 (limit is 1–{MAX_LIST})")
        before_id = parse_case_number(before, field="before")[2] if before else None
        c = objections.c
        query = select(*_LISTED).order_by(c.id.desc()).limit(limit)
        if subject_id is not None:
            query = query.where(c.subject_id == subject_id)
        if state is not None:
            query = query.where(c.state == state.value)
        if kind is not None:
            query = query.where(c.kind == kind.value)
        if before_id is not None:
            query = query.where(c.id < before_id)

        def work() -> list[Case]:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
                current = self._current_of(conn, {row.record_id for row in rows})
                return [self._case(row, current.get(row.record_id)) for row in rows]

        return await self._sql.call(work)

    async def get(self, number: str, *, subject_id: str | None = None, with_attachment: bool = False) -> Case:
        """One case; with ``subject_id``, only if it is that subject's.

        Raises:
            InvalidInput: not a case number.
            NotFound: no such case here (or not the subject's).
        """
        case_id = self._own(number)
        columns = [*_LISTED, objections.c.attachment] if with_attachment else _LISTED

        def work() -> Case:
            with self.engine.connect() as conn:
                row = conn.execute(select(*columns).where(objections.c.id == case_id)).first()
                if row is None or (subject_id is not None and row.subject_id != subject_id):
                    raise NotFound(f"没有编号为 {number} 的办件 (no case {number})")
                current = self._current_of(conn, {row.record_id})
                return self._case(row, current.get(row.record_id), with_attachment=with_attachment)

        return await self._sql.call(work)

    def _own(self, number: str) -> int:
        region, _kind, case_id = parse_case_number(number)
        if region is not self.region:
            raise NotFound(f"办件 {number} 不属于本地区 (case {number} belongs to {region.value})")
        return case_id

    def _current_of(self, conn: Connection, record_ids: set[str]) -> dict[str, CreditRecord]:
        if not record_ids:
            return {}
        query = select(records).where(records.c.current, records.c.record_id.in_(sorted(record_ids)))
        return {row.record_id: record_from_row(self.region, row) for row in conn.execute(query)}

    def _case(self, row: Any, record: CreditRecord | None, *, with_attachment: bool = False) -> Case:
        kind = CaseKind(row.kind)
        attachment = None
        if row.attachment_sha256:
            data = bytes(row.attachment) if with_attachment and row.attachment is not None else b""
            attachment = Attachment(
                row.attachment_name or "", row.attachment_type or "", row.attachment_sha256, row.attachment_size, data
            )
        marked = kind is CaseKind.OBJECTION and row.state == CaseState.OPEN
        return Case(
            number=case_number(self.region, kind, row.id),
            region=self.region,
            kind=kind,
            state=CaseState(row.state),
            record_id=row.record_id,
            record_version=row.record_version,
            subject_id=row.subject_id,
            reason=row.reason,
            attachment=attachment,
            filed_by=row.filed_by,
            filed_at=as_utc(row.filed_at),
            resolution=Resolution(row.resolution) if row.resolution else None,
            resolution_note=row.resolution_note or "",
            resolved_by=row.resolved_by or "",
            resolved_at=as_utc(row.resolved_at),
            new_version=row.new_version or 0,
            record=dataclasses.replace(record, under_objection=True) if record and marked else record,
        )

    # Filing

    async def file(
        self,
        *,
        subject_id: str,
        record_id: str,
        kind: CaseKind,
        reason: str,
        filed_by: str,
        attachment: Attachment | None = None,
        now: datetime | None = None,
    ) -> Case:
        """Open a case on one of the subject's current records.

        Raises:
            InvalidInput: no reason, or one over 2,000 characters.
            NotFound: the record is not one of the subject's current records.
            FailedPrecondition: a case of this kind is already open on the record.
        """
        reason = required_text(reason, "reason", MAX_REASON, "异议或修复理由")
        filed_at = now or datetime.now(UTC)

        def work() -> int:
            with self.engine.begin() as conn:
                version = conn.execute(
                    select(records.c.version).where(
                        records.c.current, records.c.record_id == record_id, records.c.subject_id == subject_id
                    )
                ).scalar()
                if version is None:
                    raise NotFound(f"该主体没有编号为 {record_id[:64]} 的记录 (no such record of the subject)")
                try:
                    return int(
                        conn.execute(
                            insert(objections)
                            .values(
                                kind=kind.value,
                                state=CaseState.OPEN.value,
                                record_id=record_id,
                                record_version=version,
                                subject_id=subject_id,
                                reason=reason,
                                attachment_name=attachment.filename if attachment else None,
                                attachment_type=attachment.content_type if attachment else None,
                                attachment_sha256=attachment.sha256 if attachment else None,
                                attachment_size=attachment.size if attachment else None,
                                attachment=attachment.data if attachment else None,
                                filed_by=filed_by,
                                filed_at=filed_at,
                            )
                            .returning(objections.c.id)
                        ).scalar_one()
                    )
                except IntegrityError as exc:
                    raise FailedPrecondition(
                        f"该记录已有处理中的{kind.name_zh}申请 (an open {kind.value} case exists for this record)"
                    ) from exc

        case_id = await self._sql.call(work)
        return await self.get(case_number(self.region, kind, case_id))

    # Deciding

    async def resolve(
        self,
        number: str,
        resolution: Resolution,
        *,
        note: str,
        resolved_by: str,
        correction: Correction | None = None,
        now: datetime | None = None,
    ) -> Case:
        """Close an open case with the authority's decision; every outcome but a refused
        repair stores the record's next version in the same transaction.

        Raises:
            InvalidInput: not a case number; an outcome that does not fit the case's
                kind; no note; a correction missing, empty, or given with another outcome.
            NotFound: no such case here.
            FailedPrecondition: the case is already closed, or its record is gone.
        """
        case_id = self._own(number)
        note = required_text(note, "note", MAX_NOTE, "处理意见")
        if resolution is Resolution.CORRECTED and (correction is None or correction.empty):
            raise InvalidInput.for_field("correction", "更正须说明更正的内容 (a correction must change something)")
        if resolution is not Resolution.CORRECTED and correction is not None and not correction.empty:
            raise InvalidInput.for_field("correction", "只有更正才修改记录内容 (only a correction changes fields)")
        resolved_at = now or datetime.now(UTC)

        def work() -> None:
            with self.engine.begin() as conn:
                lock_versions(conn)
                row = conn.execute(select(*_LISTED).where(objections.c.id == case_id)).first()
                if row is None:
                    raise NotFound(f"没有编号为 {number} 的办件 (no case {number})")
                kind = CaseKind(row.kind)
                if resolution not in RESOLUTIONS[kind]:
                    allowed = ", ".join(r.value for r in RESOLUTIONS[kind])
                    raise InvalidInput.for_field(
                        "resolution",
                        f"{kind.name_zh}办件的结论应为 {allowed} (a {kind.value} case is resolved as {allowed})",
                    )
                if row.state != CaseState.OPEN:
                    raise FailedPrecondition(f"办件 {number} 已办结 (case {number} is already closed)")
                new_version = None
                if resolution is not Resolution.REFUSED:
                    new_version = self._store_version(
                        conn,
                        row.record_id,
                        resolution,
                        correction,
                        source=f"{number} {resolution.value}",
                        now=resolved_at,
                    )
                closed = conn.execute(
                    update(objections)
                    .where(objections.c.id == case_id, objections.c.state == CaseState.OPEN.value)
                    .values(
                        state=CaseState.CLOSED.value,
                        resolution=resolution.value,
                        resolution_note=note,
                        resolved_by=resolved_by,
                        resolved_at=resolved_at,
                        new_version=new_version,
                    )
                )
                if closed.rowcount != 1:
                    raise FailedPrecondition(f"办件 {number} 已办结 (case {number} is already closed)")

        await self._sql.call(work)
        return await self.get(number)

    async def repair(self, record_id: str, *, note: str, resolved_by: str, now: datetime | None = None) -> Case:
        """Credit repair applied by the authority: a closed case of its own and the
        record's next version with status REPAIRED.

        Raises:
            InvalidInput: no note.
            NotFound: no such current record here.
            FailedPrecondition: the record is revoked or already repaired.
        """
        note = required_text(note, "note", MAX_NOTE, "修复依据")
        at = now or datetime.now(UTC)

        def work() -> int:
            with self.engine.begin() as conn:
                lock_versions(conn)
                row = conn.execute(
                    select(records.c.version, records.c.subject_id).where(
                        records.c.current, records.c.record_id == record_id
                    )
                ).first()
                if row is None:
                    raise NotFound(f"本节点没有编号为 {record_id[:64]} 的记录 (no such record here)")
                case_id = int(
                    conn.execute(
                        insert(objections)
                        .values(
                            kind=CaseKind.CREDIT_REPAIR.value,
                            state=CaseState.CLOSED.value,
                            record_id=record_id,
                            record_version=row.version,
                            subject_id=row.subject_id,
                            reason=note,
                            filed_by=resolved_by,
                            filed_at=at,
                            resolution=Resolution.REPAIRED.value,
                            resolution_note=note,
                            resolved_by=resolved_by,
                            resolved_at=at,
                        )
                        .returning(objections.c.id)
                    ).scalar_one()
                )
                number = case_number(self.region, CaseKind.CREDIT_REPAIR, case_id)
                new_version = self._store_version(
                    conn, record_id, Resolution.REPAIRED, None, source=f"{number} repaired", now=at
                )
                conn.execute(update(objections).where(objections.c.id == case_id).values(new_version=new_version))
                return case_id

        case_id = await self._sql.call(work)
        return await self.get(case_number(self.region, CaseKind.CREDIT_REPAIR, case_id))

    def _store_version(
        self,
        conn: Connection,
        record_id: str,
        resolution: Resolution,
        correction: Correction | None,
        *,
        source: str,
        now: datetime,
    ) -> int:
        row = conn.execute(select(records).where(records.c.current, records.c.record_id == record_id)).first()
        if row is None:
            raise FailedPrecondition(f"记录 {record_id[:64]} 已不存在 (the record has no current version)")
        record = record_from_row(self.region, row)
        if resolution is Resolution.REPAIRED and record.status is not RecordStatus.IN_FORCE:
            raise FailedPrecondition(
                f"该记录状态为 {record.status.value}，不能信用修复 (only records in force are repaired)"
            )
        changed = outcome_of(record, resolution, correction)
        if changed.removed_on is not None and changed.removed_on < changed.decided_on:
            raise InvalidInput.for_field(
                "correction.removed_on", "移出日期早于列入日期 (removed before it was decided)"
            )
        digest = content_hash(
            changed.subject_id, changed.subject_kind, changed.subject_name, changed.domain, changed.scope,
            changed.decision_no, changed.authority, changed.decided_on, changed.category, changed.content,
            changed.procedure, changed.status, changed.publicity_until, changed.removed_on,
        )  # fmt: skip
        stamp = now.astimezone(UTC).replace(tzinfo=None) if self._sqlite else now
        conn.execute(update(records).where(records.c.seq == row.seq).values(current=False))
        version = record.version + 1
        conn.execute(
            insert(records).values(
                record_id=record_id,
                version=version,
                current=True,
                subject_id=changed.subject_id,
                subject_kind=changed.subject_kind.value,
                subject_name=changed.subject_name,
                domain=changed.domain,
                scope=changed.scope.value,
                decision_no=changed.decision_no,
                authority=changed.authority,
                decided_on=changed.decided_on,
                category=changed.category,
                content=changed.content,
                procedure=changed.procedure.value,
                status=changed.status.value,
                publicity_until=changed.publicity_until,
                removed_on=changed.removed_on,
                source=source,
                ingested_at=stamp,
                content_hash=digest,
            )
        )
        # The node's data changed: its data as-of time moves, as after a load.
        conn.execute(
            insert(ingests).values(
                source=source,
                file_sha256="",
                started_at=now,
                finished_at=now,
                rows_read=1,
                rows_added=0,
                rows_changed=1,
                rows_unchanged=0,
                rows_rejected=0,
            )
        )
        return version


_c = objections.c
_OPEN_ALL = select(_c.record_id).where(_c.state == CaseState.OPEN.value, _c.kind == CaseKind.OBJECTION.value).distinct()
# Every column but the attachment's bytes, which are read only when asked for.
_LISTED: Sequence[Any] = [column for column in objections.c if column.name != "attachment"]
