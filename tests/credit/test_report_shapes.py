"""The merge and the issued document, which keep what every report of a shape shares,
against the straightforward way (the merge as it was first written, kept here as the
reference; the document built whole and canonicalised whole) on random answers: every
mix of records, exclusions, objection marks, pairs left out or added, regions that
failed, replicas and catalogues known, unknown, cut down or fetched again."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.catalogue import Catalogue, Scope, catalogue, domains
from credit.document import Issue, report_document
from credit.identifiers import Subject, SubjectKind, make_resident_id, make_uscc
from credit.issued import issued_document
from credit.profiles import ReportProfile, get_profile
from credit.regions import Region
from credit.registers import RegisterFinding
from credit.report import (
    Cell,
    CellOutcome,
    MergedReport,
    RegionFailure,
    RegionOutcome,
    RegionStatus,
    ReplicaResult,
    ReportLine,
    Source,
    Verdict,
    merge,
)
from credit.rules import (
    CreditRecord,
    DomainResult,
    Exclusion,
    Outcome,
    Procedure,
    RecordStatus,
    SubjectResult,
    evaluate,
)
from credit.signing import canonical
from credit.window import ReportWindow, compute_window

SUBJECTS = {
    SubjectKind.ENTERPRISE: Subject(make_uscc("91120116MA05JBXQ1"), SubjectKind.ENTERPRISE),
    SubjectKind.PERSON: Subject(make_resident_id("12010419850312004"), SubjectKind.PERSON),
}
PROFILES = ("tianjin-2023", "national-2025")
APPLIED = date(2025, 6, 16)
AS_OF = datetime(2025, 6, 15, 20, 0, tzinfo=UTC)
TEXTS = ("罚款5000元", 'a "quoted" \\ line\n\ttab \u2028 \U0001f600', "")


# The reference: the merge as first written, cell by cell, nothing kept between reports.


def reference_merge(
    subject: Subject,
    profile: ReportProfile,
    window: ReportWindow,
    *,
    catalogues: Mapping[Region, Catalogue | None],
    answers: Mapping[Region, SubjectResult | RegionFailure],
) -> MergedReport:
    regions = tuple(sorted(answers, key=lambda r: list(Region).index(r)))
    claimed: dict[Region, set[tuple[str, Scope]] | None] = {}
    keys: set[tuple[str, Scope]] = set()
    for region in regions:
        known = catalogues.get(region)
        if known is None:
            claimed[region] = None
            continue
        cover = {
            (entry.domain.code, scope)
            for entry in known.for_subject(subject.kind)
            for scope in entry.scopes
            if scope in profile.scopes
        }
        claimed[region] = cover
        keys |= cover
    by_region: dict[Region, dict[tuple[str, Scope], tuple[Outcome, tuple[CreditRecord, ...], int]]] = {}
    outcomes = []
    for region in regions:
        answer = answers[region]
        if isinstance(answer, RegionFailure):
            outcomes.append(RegionOutcome(region, RegionStatus.UNAVAILABLE, reason=answer.reason))
            continue
        by_region[region] = {(r.domain, r.scope): (r.outcome, r.records, r.excluded_count) for r in answer.results}
        keys |= {
            (r.domain, r.scope)
            for r in answer.results
            if r.scope in profile.scopes and r.outcome is not Outcome.NOT_COVERED
        }
        outcome = RegionOutcome(
            region,
            RegionStatus.ANSWERED,
            catalogue_version=answer.catalogue_version,
            data_as_of=answer.data_as_of,
            warnings=answer.warnings,
        )
        if isinstance(answer, ReplicaResult):
            outcome = replace(
                outcome, source=Source.REPLICA, served_by=answer.served_by, replica_as_of=answer.replica_as_of
            )
        outcomes.append(outcome)
    order = {code: i for i, code in enumerate(domains())}
    scope_order = {s: i for i, s in enumerate(Scope)}
    lines = []
    for domain, scope in sorted(keys, key=lambda k: (order.get(k[0], len(order)), scope_order[k[1]])):
        cells = tuple(
            _reference_cell(region, (domain, scope), claimed[region], by_region.get(region)) for region in regions
        )
        lines.append(ReportLine(domain, scope, cells))
    cells = [cell for line in lines for cell in line.cells]
    if any(cell.outcome is CellOutcome.RECORDS for cell in cells):
        verdict = Verdict.HAS_RECORDS
    elif not cells or any(cell.outcome is CellOutcome.UNAVAILABLE for cell in cells):
        verdict = Verdict.INCOMPLETE
    else:
        verdict = Verdict.CLEAN
    return MergedReport(subject, profile, window, tuple(outcomes), tuple(lines), verdict)


def _reference_cell(
    region: Region,
    key: tuple[str, Scope],
    claimed: set[tuple[str, Scope]] | None,
    answer: Mapping[tuple[str, Scope], tuple[Outcome, tuple[CreditRecord, ...], int]] | None,
) -> Cell:
    if claimed is not None and key not in claimed:
        return Cell(region, CellOutcome.NOT_COVERED)
    if answer is None:
        return Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未应答 (the region did not answer)")
    found = answer.get(key)
    if found is None or found[0] is Outcome.NOT_COVERED:
        if claimed is None and found is not None:
            return Cell(region, CellOutcome.NOT_COVERED)
        return Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未就此领域应答 (no answer for this domain)")
    outcome, records, excluded = found
    if outcome is Outcome.RECORDS:
        return Cell(region, CellOutcome.RECORDS, records, excluded)
    return Cell(region, CellOutcome.NO_RECORD, (), excluded)


# Random answers.


def _record(rng: random.Random, region: Region, subject: Subject, domain: str, scope: Scope, n: int) -> CreditRecord:
    return CreditRecord(
        record_id=f"{region.value}-{n}",
        version=rng.randint(1, 3),
        region=region,
        subject_id=subject.id,
        subject_kind=subject.kind,
        subject_name="天津测试科技有限公司",
        domain=domain,
        scope=scope,
        decision_no=f"津罚〔2024〕{n}号",
        authority=rng.choice(TEXTS) or "天津市市场监督管理委员会",
        decided_on=date(rng.randint(2019, 2025), rng.randint(1, 5), rng.randint(1, 28)),
        category=rng.choice(("罚款", "不予行政处罚", "警告")),
        content=rng.choice(TEXTS),
        procedure=rng.choice(list(Procedure)),
        status=rng.choice((RecordStatus.IN_FORCE, RecordStatus.IN_FORCE, RecordStatus.REPAIRED, RecordStatus.REVOKED)),
        publicity_until=rng.choice((None, date(2027, 3, 1))),
        removed_on=rng.choice((None, None, date(2024, 8, 1))),
        under_objection=rng.random() < 0.2,
    )


def _catalogue(rng: random.Random, region: Region) -> Catalogue | None:
    draw = rng.random()
    if draw < 0.1:
        return None
    full = catalogue(region)
    if draw < 0.25:
        # A catalogue fetched again, or one that lists less.
        entries = tuple(e for e in full.entries if rng.random() < 0.8)
        return Catalogue(region, f"{full.version}-{rng.randint(0, 2)}", entries)
    return full


def _answer(
    rng: random.Random,
    region: Region,
    subject: Subject,
    profile: ReportProfile,
    window: ReportWindow,
    known: Catalogue | None,
) -> SubjectResult | RegionFailure:
    if rng.random() < 0.15:
        return RegionFailure(rng.choice(("超时 (deadline exceeded)", "无法连接 (unavailable)")))
    own = known or catalogue(region)
    pairs = [(e.domain.code, s) for e in own.for_subject(subject.kind) for s in e.scopes]
    count = rng.choice((0, 0, 1, 3, 6)) if pairs else 0
    records = [_record(rng, region, subject, *rng.choice(pairs), n) for n in range(count)]
    result = evaluate(subject, records, catalogue=own, profile=profile, window=window, data_as_of=AS_OF)
    kept = [r for r in result.results if r.outcome is not Outcome.NOT_COVERED or rng.random() < 0.3]
    if rng.random() < 0.2:
        kept = [r for r in kept if rng.random() < 0.9]  # an answer for less than the catalogue claims
    if rng.random() < 0.15:
        kept = [
            replace(r, excluded=((Exclusion.SIMPLIFIED_PROCEDURE, rng.randint(0, 2)),))
            if r.outcome is Outcome.NO_RECORD and rng.random() < 0.2
            else r
            for r in kept
        ]
    if rng.random() < 0.15:
        # Pairs beyond the catalogue, some in scopes the profile leaves out, some said twice.
        code = rng.choice(["not_a_domain", *domains()])
        kept.append(DomainResult(code, rng.choice(list(Scope)), rng.choice(list(Outcome))))
        if kept and rng.random() < 0.5:
            kept.append(rng.choice(kept))
    rng.shuffle(kept)
    warnings = tuple(rng.sample(("数据延迟", "目录已更新", "部分领域暂缺"), rng.randint(0, 2)))
    answer = replace(result, results=tuple(kept), warnings=warnings)
    if rng.random() < 0.15:
        other = rng.choice([r for r in Region if r is not region])
        return ReplicaResult.of(answer, served_by=other, replica_as_of=rng.choice((None, AS_OF)))
    return answer


def _inputs(rng: random.Random) -> tuple[Subject, ReportProfile, ReportWindow, dict, dict]:  # type: ignore[type-arg]
    subject = SUBJECTS[rng.choice(list(SubjectKind))]
    profile = get_profile(rng.choice(PROFILES))
    window = compute_window(APPLIED, rng.choice(profile.window_years), profile)
    regions = [r for r in Region if rng.random() < 0.9]
    catalogues = {region: _catalogue(rng, region) for region in Region if rng.random() < 0.95}
    answers = {r: _answer(rng, r, subject, profile, window, catalogues.get(r)) for r in regions}
    return subject, profile, window, catalogues, answers


def _issue(rng: random.Random, n: int) -> Issue:
    return Issue(
        report_no=f"JJJ-20250616-{n:010d}",
        verification_code=f"ABCD-{n:04d}",
        issued_at=datetime(2025, 6, 16, 2, 0, rng.randint(0, 59), tzinfo=UTC),
        issuer="jjj-gateway-test",
        subject_name=rng.choice(TEXTS),
        register=rng.choice(
            (None, RegisterFinding(SubjectKind.ENTERPRISE, None, Region.TIANJIN, searched=(Region.TIANJIN,)))
        ),
        issuer_name=rng.choice(("", "天津市公共信用信息中心")),
        issuer_contact=rng.choice(TEXTS),
    )


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_merge_is_the_reference_merge(rng: random.Random) -> None:
    subject, profile, window, catalogues, answers = _inputs(rng)
    expected = reference_merge(subject, profile, window, catalogues=catalogues, answers=answers)
    # Twice: the second time from what the first kept.
    for _ in range(2):
        assert merge(subject, profile, window, catalogues=catalogues, answers=answers) == expected


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_issued_document_is_the_document_canonicalised_whole(rng: random.Random) -> None:
    subject, profile, window, catalogues, answers = _inputs(rng)
    expected = reference_merge(subject, profile, window, catalogues=catalogues, answers=answers)
    for n in range(2):
        issue = _issue(rng, n)
        report = merge(subject, profile, window, catalogues=catalogues, answers=answers)
        document, payload = issued_document(report, issue)
        whole = report_document(expected, issue)
        assert document == whole
        assert payload == canonical(whole, known_plain=True) == rfc8785.dumps(whole)


def test_reports_of_one_shape_share_the_lines_without_records() -> None:
    subject = SUBJECTS[SubjectKind.ENTERPRISE]
    profile = get_profile("tianjin-2023")
    window = compute_window(APPLIED, 3, profile)
    catalogues = {region: catalogue(region) for region in Region}

    def clean(region: Region) -> SubjectResult:
        return evaluate(subject, [], catalogue=catalogues[region], profile=profile, window=window, data_as_of=AS_OF)

    answers: dict[Region, SubjectResult | RegionFailure] = {region: clean(region) for region in Region}
    first = merge(subject, profile, window, catalogues=catalogues, answers=answers)
    second = merge(subject, profile, window, catalogues=catalogues, answers=answers)
    assert first.verdict is Verdict.CLEAN
    assert first.lines is second.lines
    # A record makes its own line; the others are still the shape's.
    found = evaluate(
        subject,
        [_record(random.Random(1), Region.BEIJING, subject, "market_regulation", Scope.ADMINISTRATIVE_PENALTY, 1)],
        catalogue=catalogues[Region.BEIJING],
        profile=profile,
        window=window,
        data_as_of=AS_OF,
    )
    recorded = merge(subject, profile, window, catalogues=catalogues, answers={**answers, Region.BEIJING: found})
    own = [a for a, b in zip(recorded.lines, first.lines, strict=True) if a is not b]
    assert [(line.domain, line.scope) for line in own] == [("market_regulation", Scope.ADMINISTRATIVE_PENALTY)]
    # A region that fails makes another shape: its lines say so, none is taken from the first.
    answers[Region.HEBEI] = RegionFailure("超时 (deadline exceeded)")
    failed = merge(subject, profile, window, catalogues=catalogues, answers=answers)
    assert failed.verdict is Verdict.INCOMPLETE
    assert not {id(line) for line in failed.lines} & {
        id(line) for line in first.lines if line.cells[2].outcome is CellOutcome.NO_RECORD
    }
