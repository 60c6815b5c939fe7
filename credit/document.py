"""The report as a JSON document: what is signed, registered, printed and verified.

All dates are ISO 8601; times are UTC with a ``Z``. Region and domain names travel
with their codes so that a person reading the JSON, or the printed page made from it,
needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from credit.catalogue import domains
from credit.clock import iso_z_or_none
from credit.regions import Region
from credit.registers import RegisterFinding, SubjectRegistration
from credit.report import Cell, CellOutcome, MergedReport, RegionOutcome, Source
from credit.rules import CreditRecord

FORMAT = "jjj-credit-report/1"
TITLE = "公共信用报告（无违法违规证明专用版）"


def _record(record: CreditRecord) -> dict[str, Any]:
    return {
        "decision_no": record.decision_no,
        "authority": record.authority,
        "decided_on": record.decided_on.isoformat(),
        "category": record.category,
        "content": record.content,
        "procedure": record.procedure.value,
        "status": record.status.value,
        "publicity_until": record.publicity_until.isoformat() if record.publicity_until else None,
        "removed_on": record.removed_on.isoformat() if record.removed_on else None,
        "record_id": record.record_id,
        "version": record.version,
    } | ({"objection": "open"} if record.under_objection else {})


def _cell(cell: Cell) -> dict[str, Any]:
    if not cell.records and not cell.excluded and not cell.reason:
        return _plain_cell(cell.region, cell.outcome)
    out: dict[str, Any] = {"region": cell.region.value, "outcome": cell.outcome.value}
    if cell.records:
        out["records"] = [_record(r) for r in cell.records]
    if cell.excluded:
        out["excluded"] = cell.excluded
    if cell.reason:
        out["reason"] = cell.reason
    return out


@lru_cache(maxsize=64)
def _plain_cell(region: Region, outcome: CellOutcome) -> dict[str, Any]:
    # Shared between documents: report documents are read, serialised and signed, never
    # changed after they are built.
    return {"region": region.value, "outcome": outcome.value}


def _region(outcome: RegionOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {
        "region": outcome.region.value,
        "name": outcome.region.name_zh,
        "status": outcome.status.value,
        "catalogue_version": outcome.catalogue_version or None,
        "data_as_of": iso_z_or_none(outcome.data_as_of),
        "reason": outcome.reason or None,
        "source": outcome.source.value,
    }
    if outcome.source is Source.REPLICA and outcome.served_by is not None:
        # Answered by another region's node from its replica of this region's records.
        out["served_by"] = outcome.served_by.value
        out["served_by_name"] = outcome.served_by.name_zh
        out["replica_as_of"] = iso_z_or_none(outcome.replica_as_of)
    return out


def _registration(entry: SubjectRegistration) -> dict[str, Any]:
    return {
        "name": entry.name,
        "legal_representative": entry.legal_rep,
        "address": entry.address,
        "authority": entry.authority,
        "established_on": entry.established_on.isoformat() if entry.established_on else None,
        "status": entry.status,
        "region": entry.region.value,
        "region_name": entry.region.name_zh,
    }


def _subject(report: MergedReport, issue: Issue) -> dict[str, Any]:
    """Who the report is about: the registration details first (``register``), or, when
    no register shows the subject, why not in words (``register_note``). Documents
    issued before registers were consulted have neither member."""
    out: dict[str, Any] = {"id": report.subject.id, "kind": report.subject.kind.value, "name": issue.subject_name}
    finding = issue.register
    if finding is None:
        return out
    if finding.registration is not None:
        out["register"] = _registration(finding.registration)
    else:
        out["register"] = None
        out["register_note"] = finding.note
    return out


@dataclass(frozen=True, slots=True)
class Issue:
    """What the gateway adds when it issues a report. ``subject_name`` is the register's
    name for the subject, else the name its records carry."""

    report_no: str
    verification_code: str
    issued_at: datetime
    issuer: str
    subject_name: str = ""
    register: RegisterFinding | None = None


def report_document(report: MergedReport, issue: Issue) -> dict[str, Any]:
    """The JSON document of an issued report.

    Raises nothing.
    """
    names = domains()
    return {
        "format": FORMAT,
        "title": report.profile.title or TITLE,
        "report_no": issue.report_no,
        "verification_code": issue.verification_code,
        "issuer": issue.issuer,
        "issued_at": iso_z_or_none(issue.issued_at),
        "profile": {"id": report.profile.id, "version": report.profile.version},
        "subject": _subject(report, issue),
        "window": {
            "application_date": report.window.application_date.isoformat(),
            "years": report.window.years,
            "start": report.window.start.isoformat(),
            "cutoff": report.window.cutoff.isoformat(),
            "calendar_exact": report.window.calendar_exact,
        },
        "regions": [_region(outcome) for outcome in report.regions],
        "lines": [
            {
                "domain": line.domain,
                "domain_name": names[line.domain].name if line.domain in names else line.domain,
                "scope": line.scope.value,
                "scope_name": line.scope.name_zh,
                "cells": [_cell(cell) for cell in line.cells],
            }
            for line in report.lines
        ],
        "verdict": report.verdict.value,
        "notes": sorted({w for outcome in report.regions for w in outcome.warnings}),
    }
