"""Objections and credit repair through the gateway (异议、信用修复).

A subject objects to a record of one of its own reports, or applies for its credit
repair; the gateway finds the record in the registered report, and the region that owns
it, and files the case with that region's node on the subject's behalf. The subject
follows its cases across the three nodes. Authorities (agency officers and admins) list
the cases of a region, read one with its attachment, and decide it, or apply a credit
repair directly; the node stores the outcome as the record's next version, and the
gateway's change-feed watcher then marks earlier reports with that record superseded.

Nodes keep the cases; the gateway keeps none of their content, only the audit log of
who filed, read and decided what.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from credit import policy
from credit.audit import Action, Event
from credit.cases import Case, CaseKind, CaseState, Correction, Resolution, check_attachment, parse_case_number
from credit.errors import (
    CreditError,
    NotFound,
    Unavailable,
)
from credit.policy import Principal
from credit.regions import Region
from credit.signing import verify
from federation.assertions import BATCH, on_behalf_of
from federation.client import NodeClient
from gateway.reports.service import ReportService

CALL_TIMEOUT = 10.0


class ObjectionService:
    def __init__(self, reports: ReportService, clients: Mapping[Region, NodeClient]) -> None:
        self.reports = reports
        self.clients = clients
        self.audit = reports.audit

    def _assertion(self, principal: Principal, region: Region, subject: str, purpose: str) -> str:
        return on_behalf_of(
            self.reports.signing_key,
            issuer=self.reports.issuer,
            user=principal.username,
            role=principal.role.value,
            subject=subject,
            purpose=purpose,
            regions=[region],
        )

    def _client(self, region: Region) -> NodeClient:
        """Raises: Unavailable: no node is configured for the region."""
        client = self.clients.get(region)
        if client is None:
            raise Unavailable(f"未配置{region.name_zh}节点 (no node configured for {region.value})")
        return client

    async def _audited(self, principal: Principal, action: Action, subject: str, purpose: str, detail: str) -> None:
        await self.audit.record(
            Event(principal.username, principal.role.value, action, subject, purpose, detail=detail)
        )

    # The subject's side

    async def file(
        self,
        principal: Principal,
        *,
        report_no: str,
        record_id: str,
        kind: CaseKind,
        reason: str,
        attachment: tuple[str, bytes] | None = None,
    ) -> Case:
        """File a case against a record of one of the subject's own reports, with the
        node that owns the record.

        Raises:
            PermissionDenied: not a subject, or another subject's report.
            NotFound: no such report, or the record is not in it (or no longer current).
            InvalidInput: no reason; an attachment that is not a PDF, PNG or JPEG of
                at most 4 MiB.
            FailedPrecondition: a case of the kind is already open on the record.
            Unavailable: the owning node cannot be reached.
        """
        subject = policy.require_filing_subject(principal)
        checked = check_attachment(*attachment) if attachment is not None else None
        entry = await self.reports.registry.report_by_number(report_no.strip())
        if entry is None or entry.subject_id != subject:
            raise NotFound(f"您没有编号为 {report_no[:40]} 的报告 (no report {report_no[:40]} of yours)")
        region, _record = find_record(verify(entry.jws, self.reports.keyring), record_id)
        assertion = self._assertion(principal, region, subject, f"{kind.name_zh}申请")
        case = await self._client(region).file_objection(
            subject, record_id, kind, reason, checked, timeout=CALL_TIMEOUT, assertion=assertion
        )
        await self._audited(
            principal,
            Action.OBJECTION_FILED,
            subject,
            f"{kind.name_zh}申请",
            f"{case.number} report={entry.report_no} record={record_id[:64]}",
        )
        return case

    async def mine(self, principal: Principal) -> tuple[list[Case], dict[Region, str]]:
        """The subject's cases in every region, newest first, and the regions that could
        not be asked (with why).

        Raises:
            PermissionDenied: not a subject.
        """
        subject = policy.require_filing_subject(principal)

        async def one(region: Region) -> list[Case]:
            assertion = self._assertion(principal, region, subject, "查看异议办理进度")
            return await self._client(region).list_objections(
                subject_id=subject, limit=1000, timeout=CALL_TIMEOUT, assertion=assertion
            )

        regions = list(self.clients)
        answers = await asyncio.gather(*(one(region) for region in regions), return_exceptions=True)
        cases: list[Case] = []
        missing: dict[Region, str] = {}
        for region, answer in zip(regions, answers, strict=True):
            if isinstance(answer, CreditError):
                missing[region] = answer.detail
            elif isinstance(answer, BaseException):
                raise answer
            else:
                cases.extend(answer)
        cases.sort(key=lambda case: case.filed_at, reverse=True)
        return cases, missing

    async def get(self, principal: Principal, number: str, *, with_attachment: bool = False) -> Case:
        """One case: the subject's own, or any for an authority.

        Raises:
            InvalidInput: not a case number.
            NotFound: no such case (or another subject's).
            PermissionDenied: neither the subject nor an authority (of the case's region).
            Unavailable: the node cannot be reached.
        """
        region, _kind, _id = parse_case_number(number)
        if policy.decides_cases(principal):
            policy.require_authority(principal, region)
            subject, asserted = "", BATCH
        else:
            subject = asserted = policy.require_filing_subject(principal)
        assertion = self._assertion(principal, region, asserted, "查看异议办件")
        case = await self._client(region).get_objection(
            number.strip().upper(),
            subject_id=subject,
            with_attachment=with_attachment,
            timeout=CALL_TIMEOUT,
            assertion=assertion,
        )
        # The gateway's own log says who read which case, and who downloaded its
        # attachment (the node logs the call as well, in its region).
        what = "attachment downloaded" if with_attachment else "case read"
        await self._audited(principal, Action.OBJECTION_VIEWED, case.subject_id, "", f"{case.number} {what}")
        return case

    # The authority's side

    async def list(
        self,
        principal: Principal,
        region: Region,
        *,
        state: CaseState | None = None,
        kind: CaseKind | None = None,
        limit: int = 100,
        before: str = "",
    ) -> list[Case]:
        """A region's cases, newest first, for an authority.

        Raises:
            PermissionDenied: not an agency officer or admin (of the region).
            InvalidInput: a limit out of range or a bad ``before``.
            Unavailable: the node cannot be reached.
        """
        policy.require_authority(principal, region)
        assertion = self._assertion(principal, region, BATCH, "异议办理")
        return await self._client(region).list_objections(
            state=state, kind=kind, limit=limit, before=before, timeout=CALL_TIMEOUT, assertion=assertion
        )

    async def resolve(
        self,
        principal: Principal,
        number: str,
        resolution: Resolution,
        *,
        note: str,
        correction: Correction | None = None,
    ) -> Case:
        """Decide an open case; the node stores the outcome as the record's next version.

        Raises:
            PermissionDenied: not an agency officer or admin (of the case's region).
            InvalidInput: a bad number, an outcome that does not fit, no note, a
                missing or misplaced correction.
            NotFound: no such case.
            FailedPrecondition: the case is already closed.
            Unavailable: the node cannot be reached.
        """
        region, _kind, _id = parse_case_number(number)
        policy.require_authority(principal, region)
        assertion = self._assertion(principal, region, BATCH, "异议办理")
        case = await self._client(region).resolve_objection(
            number.strip().upper(), resolution, note, correction, timeout=CALL_TIMEOUT, assertion=assertion
        )
        await self._audited(
            principal,
            Action.OBJECTION_RESOLVED,
            case.subject_id,
            "异议办理",
            f"{case.number} {resolution.value} version={case.new_version}",
        )
        return case

    async def repair(self, principal: Principal, region: Region, record_id: str, *, note: str) -> Case:
        """Apply a credit repair to a region's record, as its own event.

        Raises:
            PermissionDenied: not an agency officer or admin (of the region).
            InvalidInput: no note.
            NotFound: no such record.
            FailedPrecondition: the record is not in force.
            Unavailable: the node cannot be reached.
        """
        policy.require_authority(principal, region)
        assertion = self._assertion(principal, region, BATCH, "信用修复")
        case = await self._client(region).repair_record(record_id, note, timeout=CALL_TIMEOUT, assertion=assertion)
        await self._audited(
            principal,
            Action.CREDIT_REPAIRED,
            case.subject_id,
            "信用修复",
            f"{case.number} record={record_id[:64]} version={case.new_version}",
        )
        return case


def find_record(document: dict[str, Any], record_id: str) -> tuple[Region, dict[str, Any]]:
    """A record of a report document, and the region whose cell holds it.

    Raises:
        NotFound: the record is not in the report.
    """
    for line in document["lines"]:
        for cell in line["cells"]:
            for record in cell.get("records", ()):
                if record["record_id"] == record_id:
                    return Region(cell["region"]), record
    raise NotFound("该报告中没有此记录 (the record is not in this report)")
