"""A regional node in memory, for fast tests of the gateway's services.

:class:`MemoryNode` implements :class:`federation.client.NodeClient` over a list of
records with the core rules (:func:`credit.rules.evaluate` and :func:`~credit.rules.summarise`,
the rules a real node's SQL is proven equal to), keeps cases and a change feed in memory,
and fails on request the way a node does: ``node.fail = NodeUnavailable(...)`` makes every
call raise it until it is cleared. Each call is logged in ``node.calls`` with the
assertion it carried. The real nodes over gRPC stay the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

from credit.cases import Attachment, Case, CaseKind, CaseState, Correction, Resolution, case_number, outcome_of
from credit.catalogue import Catalogue, Scope, catalogue
from credit.clock import china_today
from credit.errors import CreditError, FailedPrecondition, InvalidInput, NotFound
from credit.identifiers import Subject, SubjectKind, parse_subject, parse_subjects
from credit.profiles import ReportProfile, get_profile
from credit.queries import BatchResult, ChangeNotice, JointDiscipline, QueryOptions, SubjectCheck, check_purpose
from credit.regions import Region
from credit.registers import SubjectRegistration
from credit.report import ReplicaResult
from credit.rules import CreditRecord, SubjectResult, SubjectSummary, evaluate, summarise
from credit.window import ReportWindow, compute_window
from federation.client import NodeUnavailable
from federation.wire import CheckAnswer


def unavailable(region: Region) -> NodeUnavailable:
    """What a node that cannot be reached looks like to its caller."""
    return NodeUnavailable(
        region, "UNAVAILABLE", "connection refused", reason="无法连接 (unavailable: connection refused)"
    )


class MemoryNode:
    """One region's node: its records, cases and change feed, in memory."""

    def __init__(
        self,
        region: Region,
        records: Sequence[CreditRecord] = (),
        *,
        today: date | None = None,
        register: Sequence[SubjectRegistration] | None = None,
    ) -> None:
        self.region = region
        # The region's register of market entities; None: the node holds none (as a
        # real node that never loaded one).
        self.register = None if register is None else {entry.subject_id: entry for entry in register}
        self.catalogue_ = catalogue(region)
        self.today = today
        self.records: list[CreditRecord] = []
        self.feed: list[ChangeNotice] = []
        self.cases: dict[str, Case] = {}
        self.fail: CreditError | None = None
        self.calls: list[tuple[str, str]] = []  # (call, assertion)
        self.closed = False
        self.sparse_answers = True  # False: answer batch checks in full, as a node older than sparse answers
        for record in records:
            self.store(record)

    # Test controls

    def store(self, record: CreditRecord) -> None:
        """Store a record version (replacing the older one) and append it to the feed."""
        self.records = [r for r in self.records if r.record_id != record.record_id] + [record]
        self.feed.append(ChangeNotice(len(self.feed) + 1, record.record_id, record.version))

    def _call(self, name: str, assertion: str = "") -> None:
        self.calls.append((name, assertion))
        if self.fail is not None:
            raise self.fail

    def _rules(self, options: QueryOptions) -> tuple[ReportProfile, ReportWindow]:
        profile = get_profile(options.profile or "tianjin-2023", field="options.profile")
        day = options.application_date or self.today or china_today()
        return profile, compute_window(day, options.years, profile)

    def _of(self, subject_id: str) -> list[CreditRecord]:
        disputed = {c.record_id for c in self.cases.values() if c.state is CaseState.OPEN}
        return [
            dataclasses.replace(r, under_objection=True) if r.record_id in disputed else r
            for r in self.records
            if r.subject_id == subject_id
        ]

    # Reports

    async def query(
        self,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,  # what a wire answer may leave out; a domain value leaves nothing out
    ) -> SubjectResult:
        self._call("query", assertion)
        check_purpose(purpose)
        profile, window = self._rules(options)
        result = evaluate(
            subject, self._of(subject.id), catalogue=self.catalogue_, profile=profile, window=window, data_as_of=None
        )
        if subject.kind is SubjectKind.PERSON or not self.register:
            return result
        return dataclasses.replace(result, register_searched=True, registration=self.register.get(subject.id))

    async def query_replica(
        self,
        origin: Region,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,
    ) -> ReplicaResult:
        self._call("query_replica", assertion)
        raise NotFound(f"no replica of {origin.value} here")

    async def catalogue(self, *, timeout: float, origin: Region | None = None) -> Catalogue:
        self._call("catalogue")
        if origin is not None:
            raise NotFound(f"no replica of {origin.value} here")
        return self.catalogue_

    async def check_subjects(
        self, subjects: Sequence[str], options: QueryOptions, *, purpose: str, timeout: float, assertion: str
    ) -> CheckAnswer:
        self._call("check_subjects", assertion)
        check_purpose(purpose)
        if not subjects:
            raise InvalidInput.for_field("subject_ids", "批量核查名单为空 (the batch is empty)")
        profile, window = self._rules(options)
        checks = []
        for raw, item in zip(subjects, parse_subjects(subjects), strict=True):
            if isinstance(item, str):
                checks.append(SubjectCheck(raw, None, item))
                continue
            records = self._of(item.id)
            summary = (
                summarise(item, records, catalogue=self.catalogue_, profile=profile, window=window)
                if records
                else SubjectSummary(item)
            )
            checks.append(SubjectCheck(raw, summary))
        batch = BatchResult(profile, window, self.catalogue_.version, None, checks)
        return CheckAnswer.of(self.region.value, batch, sparse=self.sparse_answers)

    async def joint_discipline(
        self,
        subject: Subject,
        scopes: Sequence[Scope],
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
    ) -> JointDiscipline:
        self._call("joint_discipline", assertion)
        return JointDiscipline(subject, self.today or china_today(), tuple(scopes), ())

    # The change feed

    async def changes(self, after_seq: int) -> AsyncIterator[ChangeNotice]:
        self._call("changes")
        for change in list(self.feed):
            if change.seq > after_seq:
                yield change
        await asyncio.sleep(0)  # the stream ends; a follower reconnects from its cursor

    async def head_seq(self, *, timeout: float) -> int:
        self._call("head_seq")
        return len(self.feed)

    # Cases

    def _record(self, record_id: str) -> CreditRecord:
        for record in self.records:
            if record.record_id == record_id:
                return record
        raise NotFound(f"no record {record_id}")

    def _new_case(self, kind: CaseKind, record: CreditRecord, reason: str, by: str) -> Case:
        number = case_number(self.region, kind, len(self.cases) + 1)
        case = Case(number, self.region, kind, CaseState.OPEN, record.record_id, record.version, record.subject_id,
                    reason, None, by, datetime.now(UTC), record=record)  # fmt: skip
        self.cases[number] = case
        return case

    async def file_objection(
        self,
        subject_id: str,
        record_id: str,
        kind: CaseKind,
        reason: str,
        attachment: Attachment | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        self._call("file_objection", assertion)
        record = self._record(record_id)
        if record.subject_id != subject_id:
            raise NotFound(f"no record {record_id} of {subject_id}")
        if any(c.record_id == record_id and c.kind is kind and c.state is CaseState.OPEN for c in self.cases.values()):
            raise FailedPrecondition("该记录已有处理中的申请 (a case of this kind is already open on the record)")
        case = self._new_case(kind, record, reason, subject_id)
        if attachment is not None:
            case = self.cases[case.number] = dataclasses.replace(case, attachment=attachment)
        return case

    async def list_objections(
        self,
        *,
        subject_id: str = "",
        state: CaseState | None = None,
        kind: CaseKind | None = None,
        limit: int = 100,
        before: str = "",
        timeout: float,
        assertion: str,
    ) -> list[Case]:
        self._call("list_objections", assertion)
        cases = [
            c
            for c in self.cases.values()
            if (not subject_id or c.subject_id == subject_id)
            and (state is None or c.state is state)
            and (kind is None or c.kind is kind)
        ]
        return sorted(cases, key=lambda c: c.number, reverse=True)[:limit]

    async def get_objection(
        self, number: str, *, subject_id: str = "", with_attachment: bool = False, timeout: float, assertion: str
    ) -> Case:
        self._call("get_objection", assertion)
        case = self.cases.get(number)
        if case is None or (subject_id and case.subject_id != subject_id):
            raise NotFound(f"没有办件 {number} (no case {number})")
        return case

    async def resolve_objection(
        self,
        number: str,
        resolution: Resolution,
        note: str,
        correction: Correction | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        self._call("resolve_objection", assertion)
        case = self.cases.get(number)
        if case is None:
            raise NotFound(f"没有办件 {number} (no case {number})")
        if case.state is CaseState.CLOSED:
            raise FailedPrecondition(f"办件 {number} 已办结 (the case is closed)")
        old = self._record(case.record_id)
        record = dataclasses.replace(outcome_of(old, resolution, correction), version=old.version + 1)
        self.store(record)
        closed = dataclasses.replace(
            case, state=CaseState.CLOSED, resolution=resolution, resolution_note=note, resolved_by="officer",
            resolved_at=datetime.now(UTC), new_version=record.version, record=record,
        )  # fmt: skip
        self.cases[number] = closed
        return closed

    async def repair_record(self, record_id: str, note: str, *, timeout: float, assertion: str) -> Case:
        self._call("repair_record", assertion)
        record = self._record(record_id)
        case = self._new_case(CaseKind.CREDIT_REPAIR, record, note, "officer")
        return await self.resolve_objection(
            case.number, Resolution.REPAIRED, note, None, timeout=timeout, assertion=assertion
        )

    async def close(self) -> None:
        self.closed = True


def subject(raw: str) -> Subject:
    return parse_subject(raw, field="subject")


def record(
    region: Region,
    subject_id: str,
    *,
    decided_on: date,
    scope: Scope = Scope.ADMINISTRATIVE_PENALTY,
    record_id: str = "",
    category: str = "罚款",
    version: int = 1,
) -> CreditRecord:
    """A record of a domain the region's catalogue covers for the subject's kind in ``scope``."""
    kind = parse_subject(subject_id).kind
    entry = next(e for e in catalogue(region).for_subject(kind) if scope in e.scopes)
    return CreditRecord(
        record_id=record_id or f"{region.value}-{subject_id}-{decided_on:%Y%m%d}",
        version=version,
        region=region,
        subject_id=subject_id,
        subject_kind=kind if isinstance(kind, SubjectKind) else SubjectKind(kind),
        subject_name="测试主体",
        domain=entry.domain.code,
        scope=scope,
        decision_no=f"测罚〔{decided_on.year}〕1号",
        authority="测试执法局",
        decided_on=decided_on,
        category=category,
        content="测试",
    )
