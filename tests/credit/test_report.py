"""The three-region merge for every mix of outcomes: never "clean" on missing data."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from credit.catalogue import Scope, catalogue
from credit.document import Issue, report_document
from credit.identifiers import Subject, SubjectKind, make_uscc
from credit.profiles import get_profile
from credit.regions import Region
from credit.report import CellOutcome, RegionFailure, RegionStatus, Verdict, merge
from credit.rules import CreditRecord, DomainResult, Outcome, SubjectResult, evaluate
from credit.window import compute_window

SUBJECT = Subject(make_uscc("91120116MA05JBXQ1"), SubjectKind.ENTERPRISE)
PROFILE = get_profile("tianjin-2023")
WINDOW = compute_window(date(2025, 6, 16), 3, PROFILE)
AS_OF = datetime(2025, 6, 15, 20, 0, tzinfo=UTC)
CATALOGUES = {region: catalogue(region) for region in Region}


def answer(region: Region, records: list[CreditRecord] = ()) -> SubjectResult:  # type: ignore[assignment]
    return evaluate(SUBJECT, records, catalogue=CATALOGUES[region], profile=PROFILE, window=WINDOW, data_as_of=AS_OF)


def penalty(region: Region, domain: str = "market_regulation") -> CreditRecord:
    return CreditRecord(
        record_id="r1",
        version=1,
        region=region,
        subject_id=SUBJECT.id,
        subject_kind=SubjectKind.ENTERPRISE,
        subject_name="天津测试科技有限公司",
        domain=domain,
        scope=Scope.ADMINISTRATIVE_PENALTY,
        decision_no="津市监罚〔2024〕1号",
        authority="天津市市场监督管理委员会",
        decided_on=date(2024, 3, 15),
        category="罚款",
        content="罚款5000元",
    )


def cell(report, domain: str, scope: Scope, region: Region):  # type: ignore[no-untyped-def]
    line = next(line for line in report.lines if line.domain == domain and line.scope is scope)
    return next(c for c in line.cells if c.region is region)


def test_all_answer_nothing_found_is_clean() -> None:
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers={r: answer(r) for r in Region})
    assert report.verdict is Verdict.CLEAN
    assert all(o.status is RegionStatus.ANSWERED for o in report.regions)
    # Hebei does not cover taxation × serious dishonesty list; Tianjin does.
    assert cell(report, "taxation", Scope.SERIOUS_DISHONESTY_LIST, Region.HEBEI).outcome is CellOutcome.NOT_COVERED
    assert cell(report, "taxation", Scope.SERIOUS_DISHONESTY_LIST, Region.TIANJIN).outcome is CellOutcome.NO_RECORD
    # A Beijing-only domain is not covered in the other two regions.
    assert (
        cell(report, "civil_air_defence", Scope.ADMINISTRATIVE_PENALTY, Region.TIANJIN).outcome
        is CellOutcome.NOT_COVERED
    )


def test_records_anywhere_make_has_records() -> None:
    answers = {r: answer(r) for r in Region}
    answers[Region.TIANJIN] = answer(Region.TIANJIN, [penalty(Region.TIANJIN)])
    answers[Region.HEBEI] = RegionFailure("deadline exceeded")
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers=answers)
    assert report.verdict is Verdict.HAS_RECORDS
    found = cell(report, "market_regulation", Scope.ADMINISTRATIVE_PENALTY, Region.TIANJIN)
    assert found.outcome is CellOutcome.RECORDS and found.records[0].decision_no == "津市监罚〔2024〕1号"


@pytest.mark.parametrize("failed", list(Region))
def test_a_failed_region_is_never_clean(failed: Region) -> None:
    answers = {r: answer(r) for r in Region}
    answers[failed] = RegionFailure("node unavailable: connection refused")
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers=answers)
    assert report.verdict is Verdict.INCOMPLETE
    outcome = next(o for o in report.regions if o.region is failed)
    assert outcome.status is RegionStatus.UNAVAILABLE and "connection refused" in outcome.reason
    cells = [c for line in report.lines for c in line.cells if c.region is failed]
    assert cells and {c.outcome for c in cells} <= {CellOutcome.UNAVAILABLE, CellOutcome.NOT_COVERED}
    assert any(c.outcome is CellOutcome.UNAVAILABLE for c in cells)


def test_a_node_missing_a_domain_it_claims_is_unavailable_there() -> None:
    answers = {r: answer(r) for r in Region}
    full = answers[Region.BEIJING]
    trimmed = tuple(r for r in full.results if r.domain != "ecology_environment")
    answers[Region.BEIJING] = SubjectResult(**{**{f: getattr(full, f) for f in full.__slots__}, "results": trimmed})
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers=answers)
    assert report.verdict is Verdict.INCOMPLETE
    missing = cell(report, "ecology_environment", Scope.ADMINISTRATIVE_PENALTY, Region.BEIJING)
    assert missing.outcome is CellOutcome.UNAVAILABLE and missing.reason


def test_an_answer_saying_not_covered_where_the_catalogue_claims_coverage_is_unavailable() -> None:
    answers = {r: answer(r) for r in Region}
    full = answers[Region.TIANJIN]
    changed = tuple(
        DomainResult(r.domain, r.scope, Outcome.NOT_COVERED) if r.domain == "taxation" else r for r in full.results
    )
    answers[Region.TIANJIN] = SubjectResult(**{**{f: getattr(full, f) for f in full.__slots__}, "results": changed})
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers=answers)
    assert report.verdict is Verdict.INCOMPLETE
    assert cell(report, "taxation", Scope.ADMINISTRATIVE_PENALTY, Region.TIANJIN).outcome is CellOutcome.UNAVAILABLE


def test_every_region_down_and_no_catalogue_known() -> None:
    answers = {r: RegionFailure("down") for r in Region}
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues={r: None for r in Region}, answers=answers)
    assert report.verdict is Verdict.INCOMPLETE and not report.lines


def test_the_document_names_everything_a_reader_needs() -> None:
    answers = {r: answer(r) for r in Region}
    answers[Region.HEBEI] = RegionFailure("deadline exceeded after 2.0 s")
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers=answers)
    issued = datetime(2025, 6, 16, 1, 2, 3, tzinfo=UTC)
    doc = report_document(report, Issue("JJJ-20250616-ABCDEFGHJK", "7K3M-9QXR-2D8F-WH4T-P", issued, "gateway-tj"))
    assert doc["verdict"] == "incomplete"
    assert doc["issued_at"] == "2025-06-16T01:02:03Z"
    assert doc["window"]["cutoff"] == WINDOW.cutoff.isoformat()
    hebei = next(r for r in doc["regions"] if r["region"] == "hebei")
    assert hebei["status"] == "unavailable" and "deadline" in hebei["reason"]
    tianjin = next(r for r in doc["regions"] if r["region"] == "tianjin")
    assert tianjin["catalogue_version"] == "2024.1" and tianjin["data_as_of"] == "2025-06-15T20:00:00Z"
    line = next(line for line in doc["lines"] if line["domain"] == "market_regulation")
    assert line["domain_name"] == "市场监管" and line["scope_name"] == "行政处罚"


def test_lines_are_only_what_some_region_covers() -> None:
    report = merge(SUBJECT, PROFILE, WINDOW, catalogues=CATALOGUES, answers={r: answer(r) for r in Region})
    assert all(any(c.outcome is not CellOutcome.NOT_COVERED for c in line.cells) for line in report.lines)
    keys = {(line.domain, line.scope) for line in report.lines}
    # No region lists finance × serious dishonesty list: no line for it.
    assert ("finance", Scope.SERIOUS_DISHONESTY_LIST) not in keys
    covered = {
        (entry.domain.code, scope)
        for cat in CATALOGUES.values()
        for entry in cat.for_subject(SUBJECT.kind)
        for scope in entry.scopes
        if scope in PROFILE.scopes
    }
    assert keys == covered
