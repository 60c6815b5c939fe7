"""The reporting rules: which records a region's answer counts, under which profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.catalogue import Catalogue, Scope, catalogue
from credit.identifiers import PILOT_CODE_WARNING, Subject, SubjectKind, make_uscc
from credit.profiles import ReportProfile, get_profile
from credit.regions import Region
from credit.rules import (
    CreditRecord,
    DomainResult,
    Exclusion,
    Outcome,
    Procedure,
    RecordStatus,
    SubjectResult,
    evaluate,
    summarise,
)
from credit.window import ReportWindow, compute_window

APPLICATION = date(2025, 6, 16)
ENTERPRISE = Subject(make_uscc("91120116MA05K7XQ0"), SubjectKind.ENTERPRISE)
PERSON = Subject("120104198503120042", SubjectKind.PERSON)
OTHER_ID = make_uscc("91120101MA06ABCD1")
AS_OF = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)
TIANJIN = catalogue(Region.TIANJIN)
PROFILES = ("tianjin-2023", "national-2025")
# The same for both profiles (both cut off 7 working days before): 2022-06-05 .. 2025-06-05.
WINDOW = compute_window(APPLICATION, 3, get_profile("tianjin-2023"))

MakeRecord = Callable[..., CreditRecord]
Evaluate = Callable[..., SubjectResult]


def _record(**overrides: object) -> CreditRecord:
    fields: dict[str, object] = {
        "record_id": "tj-0001",
        "version": 1,
        "region": Region.TIANJIN,
        "subject_id": ENTERPRISE.id,
        "subject_kind": SubjectKind.ENTERPRISE,
        "subject_name": "天津某某贸易有限公司",
        "domain": "market_regulation",
        "scope": Scope.ADMINISTRATIVE_PENALTY,
        "decision_no": "津市监罚〔2024〕1号",
        "authority": "天津市市场监督管理委员会",
        "decided_on": date(2024, 3, 1),
        "category": "罚款",
        "content": "罚款人民币五千元",
    }
    fields.update(overrides)
    return CreditRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def record() -> MakeRecord:
    """A builder: a Tianjin market-regulation penalty on ENTERPRISE inside WINDOW, fields overridable."""
    counter = iter(range(1, 10_000))

    def build(**overrides: object) -> CreditRecord:
        n = next(counter)
        overrides.setdefault("record_id", f"tj-{n:04d}")
        overrides.setdefault("decision_no", f"津市监罚〔2024〕{n}号")
        return _record(**overrides)

    return build


@pytest.fixture
def run() -> Evaluate:
    """A builder: evaluate records for a subject against Tianjin's catalogue under a profile."""

    def build(
        records: list[CreditRecord],
        profile: str = "tianjin-2023",
        *,
        subject: Subject = ENTERPRISE,
        window: ReportWindow = WINDOW,
        cat: Catalogue = TIANJIN,
    ) -> SubjectResult:
        return evaluate(subject, records, catalogue=cat, profile=get_profile(profile), window=window, data_as_of=AS_OF)

    return build


def _result(result: SubjectResult, domain: str = "market_regulation", scope: Scope = Scope.ADMINISTRATIVE_PENALTY):
    found = [r for r in result.results if r.domain == domain and r.scope is scope]
    assert len(found) == 1, (domain, scope, found)
    return found[0]


def test_fixed_window() -> None:
    assert (WINDOW.start, WINDOW.cutoff, WINDOW.calendar_exact) == (date(2022, 6, 5), date(2025, 6, 5), True)
    assert compute_window(APPLICATION, 3, get_profile("national-2025")) == WINDOW


# --- penalties ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_general_penalty_in_window_counts(run: Evaluate, record: MakeRecord, profile: str) -> None:
    penalty = record()
    result = run([penalty], profile)
    market = _result(result)
    assert market.outcome is Outcome.RECORDS
    assert market.records == (penalty,)
    assert market.excluded == ()
    assert result.has_records


def test_simplified_procedure_excluded_under_tianjin_2023(run: Evaluate, record: MakeRecord) -> None:
    market = _result(run([record(procedure=Procedure.SIMPLIFIED)], "tianjin-2023"))
    assert market.outcome is Outcome.NO_RECORD
    assert market.records == ()
    assert market.excluded == ((Exclusion.SIMPLIFIED_PROCEDURE, 1),)


def test_simplified_procedure_counts_under_national_2025(run: Evaluate, record: MakeRecord) -> None:
    simplified = record(procedure=Procedure.SIMPLIFIED)
    market = _result(run([simplified], "national-2025"))
    assert market.outcome is Outcome.RECORDS
    assert market.records == (simplified,)
    assert market.excluded == ()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("category", ["不予行政处罚", "不予处罚（首违不罚）"])
def test_decision_not_to_penalise_is_excluded(run: Evaluate, record: MakeRecord, profile: str, category: str) -> None:
    penalty = record(category=category)
    assert penalty.not_penalised
    market = _result(run([penalty], profile))
    assert market.outcome is Outcome.NO_RECORD
    assert market.excluded == ((Exclusion.NOT_PENALISED, 1),)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    ("status", "reason"),
    [(RecordStatus.REPAIRED, Exclusion.CREDIT_REPAIRED), (RecordStatus.REVOKED, Exclusion.REVOKED)],
)
def test_repaired_and_revoked_are_excluded(
    run: Evaluate, record: MakeRecord, profile: str, status: RecordStatus, reason: Exclusion
) -> None:
    market = _result(run([record(status=status)], profile))
    assert market.outcome is Outcome.NO_RECORD
    assert market.records == ()
    assert market.excluded == ((reason, 1),)


@pytest.mark.parametrize("procedure", [Procedure.GENERAL, Procedure.SIMPLIFIED])
def test_penalty_day_before_window_is_not_part_of_the_result(
    run: Evaluate, record: MakeRecord, procedure: Procedure
) -> None:
    market = _result(run([record(decided_on=WINDOW.start - timedelta(days=1), procedure=procedure)]))
    assert market.outcome is Outcome.NO_RECORD
    assert market.records == ()
    assert market.excluded == ()
    assert market.excluded_count == 0


def test_penalty_on_window_start_counts(run: Evaluate, record: MakeRecord) -> None:
    assert _result(run([record(decided_on=WINDOW.start)])).outcome is Outcome.RECORDS


def test_penalty_on_cutoff_counts_and_after_it_does_not(run: Evaluate, record: MakeRecord) -> None:
    assert _result(run([record(decided_on=WINDOW.cutoff)])).outcome is Outcome.RECORDS
    late = _result(run([record(decided_on=WINDOW.cutoff + timedelta(days=1))]))
    assert late.outcome is Outcome.NO_RECORD
    assert late.excluded == ()
    assert _result(run([record(decided_on=APPLICATION - timedelta(days=1))])).outcome is Outcome.NO_RECORD


def test_counted_records_are_in_date_order(run: Evaluate, record: MakeRecord) -> None:
    later = record(decided_on=date(2025, 1, 2), decision_no="B")
    earlier = record(decided_on=date(2023, 1, 2), decision_no="Z")
    same_day = record(decided_on=date(2025, 1, 2), decision_no="A")
    assert _result(run([later, earlier, same_day])).records == (earlier, same_day, later)


# --- list entries -----------------------------------------------------------------------


def _listing(record: MakeRecord, **overrides: object) -> CreditRecord:
    overrides.setdefault("scope", Scope.ABNORMAL_OPERATIONS_LIST)
    overrides.setdefault("procedure", Procedure.NOT_APPLICABLE)
    overrides.setdefault("category", "")
    return record(**overrides)


def _abnormal(result: SubjectResult) -> DomainResult:
    return _result(result, "market_regulation", Scope.ABNORMAL_OPERATIONS_LIST)


def test_list_entry_listed_before_window_and_removed_inside_counts(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=date(2020, 5, 1), removed_on=date(2023, 1, 10))
    assert _abnormal(run([entry])).records == (entry,)


def test_list_entry_removed_before_window_does_not_count(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=date(2020, 5, 1), removed_on=WINDOW.start - timedelta(days=1))
    abnormal = _abnormal(run([entry]))
    assert abnormal.outcome is Outcome.NO_RECORD
    assert abnormal.excluded == ()


def test_list_entry_removed_on_window_start_counts(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=date(2020, 5, 1), removed_on=WINDOW.start)
    assert _abnormal(run([entry])).outcome is Outcome.RECORDS


def test_list_entry_never_removed_counts(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=date(2015, 5, 1), removed_on=None)
    assert _abnormal(run([entry])).records == (entry,)


def test_list_entry_listed_after_cutoff_does_not_count(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=WINDOW.cutoff + timedelta(days=1))
    assert _abnormal(run([entry])).outcome is Outcome.NO_RECORD


def test_revoked_list_entry_is_excluded(run: Evaluate, record: MakeRecord) -> None:
    entry = _listing(record, decided_on=date(2023, 5, 1), status=RecordStatus.REVOKED)
    assert _abnormal(run([entry])).excluded == ((Exclusion.REVOKED, 1),)


# --- catalogue coverage ----------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_results_cover_every_catalogue_domain_and_profile_scope(run: Evaluate, profile: str) -> None:
    result = run([], profile)
    scopes = get_profile(profile).scopes
    assert len(result.results) == 40 * len(scopes)
    assert [(r.domain, r.scope) for r in result.results] == [
        (e.domain.code, s) for e in TIANJIN.for_subject(SubjectKind.ENTERPRISE) for s in scopes
    ]
    assert not result.has_records
    assert result.region is Region.TIANJIN
    assert result.catalogue_version == TIANJIN.version
    assert result.data_as_of == AS_OF
    assert result.profile.id == profile
    assert result.window == WINDOW


def test_domain_not_in_catalogue_is_ignored(run: Evaluate, record: MakeRecord) -> None:
    beijing_only = record(domain="cyberspace")
    result = run([beijing_only])
    assert all(r.domain != "cyberspace" for r in result.results)
    assert not result.has_records
    assert all(beijing_only not in r.records for r in result.results)


def test_uncovered_scope_of_covered_domain_is_not_covered(run: Evaluate, record: MakeRecord) -> None:
    listed = record(domain="finance", scope=Scope.SERIOUS_DISHONESTY_LIST, procedure=Procedure.NOT_APPLICABLE)
    result = run([listed])
    finance_list = _result(result, "finance", Scope.SERIOUS_DISHONESTY_LIST)
    assert finance_list == DomainResult("finance", Scope.SERIOUS_DISHONESTY_LIST, Outcome.NOT_COVERED)
    assert _result(result, "finance", Scope.ADMINISTRATIVE_PENALTY).outcome is Outcome.NO_RECORD
    assert not result.has_records


def test_no_record_domain_says_no_record(run: Evaluate, record: MakeRecord) -> None:
    result = run([record(domain="taxation")])
    assert _result(result, "taxation").outcome is Outcome.RECORDS
    assert _result(result, "taxation", Scope.SERIOUS_DISHONESTY_LIST).outcome is Outcome.NO_RECORD
    assert _result(result, "finance").outcome is Outcome.NO_RECORD
    assert _result(result, "finance", Scope.FATAL_ACCIDENT_LIST).outcome is Outcome.NOT_COVERED


def test_national_2025_scopes_are_not_covered_by_tianjin(run: Evaluate, record: MakeRecord) -> None:
    coercion = record(domain="ecology_environment", scope=Scope.ADMINISTRATIVE_COERCION)
    result = run([coercion], "national-2025")
    eco = _result(result, "ecology_environment", Scope.ADMINISTRATIVE_COERCION)
    assert eco.outcome is Outcome.NOT_COVERED
    assert eco.records == ()
    assert _result(result, "judicial", Scope.CRIMINAL_JUDGMENT).outcome is Outcome.NOT_COVERED
    assert not result.has_records


def test_coercion_counts_where_beijing_covers_it(run: Evaluate, record: MakeRecord) -> None:
    coercion = record(region=Region.BEIJING, domain="ecology_environment", scope=Scope.ADMINISTRATIVE_COERCION)
    beijing = catalogue(Region.BEIJING)
    assert _result(run([coercion], "national-2025", cat=beijing), "ecology_environment", coercion.scope).records == (
        coercion,
    )
    # The Tianjin profile does not ask about coercion at all.
    assert all(r.scope is not Scope.ADMINISTRATIVE_COERCION for r in run([coercion], cat=beijing).results)


def test_person_gets_only_tianjins_health_entry(run: Evaluate, record: MakeRecord) -> None:
    health = record(subject_id=PERSON.id, subject_kind=SubjectKind.PERSON, domain="health")
    market = record(subject_id=PERSON.id, subject_kind=SubjectKind.PERSON, domain="market_regulation")
    result = run([health, market], subject=PERSON)
    assert {r.domain for r in result.results} == {"health"}
    assert _result(result, "health").records == (health,)
    assert [r.outcome for r in result.results if r.scope is not Scope.ADMINISTRATIVE_PENALTY] == [
        Outcome.NOT_COVERED
    ] * 4


def test_records_of_other_subjects_are_ignored(run: Evaluate, record: MakeRecord) -> None:
    result = run([record(subject_id=OTHER_ID)])
    assert not result.has_records
    assert _result(result).excluded == ()


# --- exclusions are counted, never shown -------------------------------------------------


def test_excluded_counts_are_reported_per_reason(run: Evaluate, record: MakeRecord) -> None:
    counted = record()
    records = [
        counted,
        record(procedure=Procedure.SIMPLIFIED),
        record(procedure=Procedure.SIMPLIFIED, category="警告"),
        record(category="不予行政处罚"),
        record(status=RecordStatus.REPAIRED),
        record(status=RecordStatus.REVOKED),
        record(status=RecordStatus.REVOKED, procedure=Procedure.SIMPLIFIED),  # one reason only
    ]
    market = _result(run(records))
    assert market.records == (counted,)
    assert market.excluded == (
        (Exclusion.CREDIT_REPAIRED, 1),
        (Exclusion.NOT_PENALISED, 1),
        (Exclusion.REVOKED, 2),
        (Exclusion.SIMPLIFIED_PROCEDURE, 2),
    )
    assert market.excluded_count == 6


def test_only_excluded_records_still_say_no_record(run: Evaluate, record: MakeRecord) -> None:
    result = run([record(status=RecordStatus.REPAIRED), record(category="不予行政处罚")])
    assert _result(result).outcome is Outcome.NO_RECORD
    assert _result(result).excluded_count == 2
    assert not result.has_records


# --- warnings ----------------------------------------------------------------------------


def test_exact_window_and_plain_subject_give_no_warnings(run: Evaluate) -> None:
    assert run([]).warnings == ()


def test_warnings_include_calendar_note_when_not_exact(run: Evaluate) -> None:
    guessed = compute_window(date(2031, 3, 10), 3, get_profile("tianjin-2023"))
    assert not guessed.calendar_exact
    result = run([], window=guessed)
    assert result.warnings == (guessed.calendar_note,)
    assert result.warnings[0]


def test_warnings_carry_the_pilot_code_warning(run: Evaluate) -> None:
    pilot = replace(ENTERPRISE, warnings=(PILOT_CODE_WARNING,))
    guessed = compute_window(date(2031, 3, 10), 3, get_profile("tianjin-2023"))
    assert run([], subject=pilot).warnings == (PILOT_CODE_WARNING,)
    assert run([], subject=pilot, window=guessed).warnings == (PILOT_CODE_WARNING, guessed.calendar_note)


# --- summarise ---------------------------------------------------------------------------


def _summarise(records: list[CreditRecord], profile: str = "tianjin-2023", subject: Subject = ENTERPRISE):
    return summarise(subject, records, catalogue=TIANJIN, profile=get_profile(profile), window=WINDOW)


def test_summary_of_no_records_is_empty() -> None:
    summary = _summarise([])
    assert summary.subject == ENTERPRISE
    assert summary.hits == ()
    assert not summary.has_records


def test_summary_counts_per_domain_and_scope(record: MakeRecord) -> None:
    records = [
        record(domain="taxation"),
        record(domain="market_regulation"),
        record(domain="market_regulation"),
        record(domain="market_regulation", procedure=Procedure.SIMPLIFIED),
        record(domain="cyberspace"),
        record(subject_id=OTHER_ID),
    ]
    assert _summarise(records).hits == (
        ("market_regulation", Scope.ADMINISTRATIVE_PENALTY, 2),
        ("taxation", Scope.ADMINISTRATIVE_PENALTY, 1),
    )
    assert _summarise(records, "national-2025").hits == (
        ("market_regulation", Scope.ADMINISTRATIVE_PENALTY, 3),
        ("taxation", Scope.ADMINISTRATIVE_PENALTY, 1),
    )
    assert _summarise(records).has_records


def test_summary_ignores_only_excluded_or_out_of_window(record: MakeRecord) -> None:
    records = [record(status=RecordStatus.REVOKED), record(decided_on=WINDOW.start - timedelta(days=1))]
    assert _summarise(records).hits == ()


# --- summarise agrees with evaluate -------------------------------------------------------

_DOMAINS = [e.domain.code for e in TIANJIN.entries] + ["cyberspace", "ocean"]
_EDGES = [
    WINDOW.start - timedelta(days=1),
    WINDOW.start,
    WINDOW.start + timedelta(days=1),
    WINDOW.cutoff - timedelta(days=1),
    WINDOW.cutoff,
    WINDOW.cutoff + timedelta(days=1),
]
_dates = st.one_of(
    st.sampled_from(_EDGES),
    st.dates(min_value=WINDOW.start - timedelta(days=800), max_value=APPLICATION + timedelta(days=30)),
)


@st.composite
def _records(draw: st.DrawFn, subject: Subject) -> CreditRecord:
    decided = draw(_dates)
    removed = draw(st.one_of(st.none(), _dates.filter(lambda d: d >= decided)))
    return _record(
        record_id=f"r{draw(st.integers(0, 10**6))}",
        decision_no=draw(st.sampled_from(["A", "B", "C"])),
        subject_id=draw(st.sampled_from([subject.id, subject.id, subject.id, OTHER_ID])),
        subject_kind=subject.kind,
        domain=draw(st.sampled_from(_DOMAINS)),
        scope=draw(st.sampled_from(list(Scope))),
        decided_on=decided,
        removed_on=removed,
        procedure=draw(st.sampled_from(list(Procedure))),
        status=draw(st.sampled_from(list(RecordStatus))),
        category=draw(st.sampled_from(["", "罚款", "警告", "不予行政处罚", "没收违法所得"])),
    )


@st.composite
def _cases(draw: st.DrawFn) -> tuple[Subject, ReportProfile, list[CreditRecord]]:
    subject = draw(st.sampled_from([ENTERPRISE, PERSON]))
    profile = get_profile(draw(st.sampled_from(PROFILES)))
    return subject, profile, draw(st.lists(_records(subject), max_size=30))


@settings(database=None, deadline=None, max_examples=300)
@given(_cases())
def test_summarise_agrees_with_evaluate(case: tuple[Subject, ReportProfile, list[CreditRecord]]) -> None:
    subject, profile, records = case
    result = evaluate(subject, records, catalogue=TIANJIN, profile=profile, window=WINDOW, data_as_of=None)
    summary = summarise(subject, records, catalogue=TIANJIN, profile=profile, window=WINDOW)

    from_evaluate = {(r.domain, r.scope): len(r.records) for r in result.results if r.outcome is Outcome.RECORDS}
    from_summary = {(d, s): n for d, s, n in summary.hits}
    assert from_summary == from_evaluate
    assert len(from_summary) == len(summary.hits)
    assert all(n > 0 for _, _, n in summary.hits)
    assert summary.has_records == result.has_records
    for r in result.results:
        assert (r.outcome is Outcome.RECORDS) == bool(r.records)
        assert r.outcome is not Outcome.NOT_COVERED or (r.records == () and r.excluded == ())
        assert all(rec.subject_id == subject.id for rec in r.records)
