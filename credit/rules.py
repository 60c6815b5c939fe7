"""The reporting rules: which of a subject's records a report counts.

Given a subject's current records in one region, the region's catalogue, a report
profile and a window, :func:`evaluate` says for every domain × scope the region covers
for that kind of subject whether there is no record or which records count, and how many
records were left out under the profile's exclusions (they are counted, never shown).
Records outside the window are simply not part of the question.

Penalties, coercion and judgments count by their decision date inside the window. List
entries count while in force at some time inside the window: listed on or before the
cut-off and not removed before the window starts.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from credit.catalogue import Catalogue, Scope
from credit.identifiers import Subject, SubjectKind
from credit.profiles import ReportProfile
from credit.regions import Region
from credit.registers import SubjectRegistration
from credit.window import ReportWindow


class Procedure(enum.StrEnum):
    __hash__ = str.__hash__  # agrees with str equality, and hashes in C

    GENERAL = "general"  # 普通程序
    SIMPLIFIED = "simplified"  # 简易程序
    NOT_APPLICABLE = "n/a"  # lists, judgments


class RecordStatus(enum.StrEnum):
    """The state of a record's latest version."""

    __hash__ = str.__hash__  # agrees with str equality, and hashes in C

    IN_FORCE = "in_force"  # 有效
    REPAIRED = "repaired"  # 已信用修复
    REVOKED = "revoked"  # 已撤销 (e.g. after an objection)


class Exclusion(enum.Enum):
    """Why a record inside the window does not count under a profile."""

    __hash__ = object.__hash__  # members are singletons compared by identity; hashes in C

    SIMPLIFIED_PROCEDURE = "simplified_procedure"
    NOT_PENALISED = "not_penalised"
    CREDIT_REPAIRED = "credit_repaired"
    REVOKED = "revoked"


class Outcome(enum.Enum):
    """The answer for one domain × scope in one region."""

    __hash__ = object.__hash__  # members are singletons compared by identity; hashes in C

    NO_RECORD = "no_record"  # 无违法违规记录
    RECORDS = "records"  # 有记录
    NOT_COVERED = "not_covered"  # 该地区未覆盖


# What marks a penalty record's category as a decision not to penalise (不予行政处罚,
# 不予处罚): the one test, which a node's SQL counting condition also applies.
NOT_PENALISED_MARK = "不予"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record version came from."""

    source: str  # file or feed it was loaded from
    ingested_at: datetime
    content_hash: str  # sha-256 of the record's canonical content


@dataclass(frozen=True, slots=True)
class CreditRecord:
    """One version of a public credit record held by a region."""

    record_id: str  # stable across versions
    version: int
    region: Region
    subject_id: str
    subject_kind: SubjectKind
    subject_name: str
    domain: str
    scope: Scope
    decision_no: str  # 行政处罚决定书文号 / list or judgment reference
    authority: str  # 处罚机关 / listing authority / court
    decided_on: date  # decision, listing or judgment date
    category: str = ""  # 处罚类别
    content: str = ""  # 处罚内容 / reason for listing
    procedure: Procedure = Procedure.GENERAL
    status: RecordStatus = RecordStatus.IN_FORCE
    publicity_until: date | None = None  # 公示截止期
    removed_on: date | None = None  # list entries: 移出日期
    provenance: Provenance | None = None
    # An objection against the record is open at its owning node (异议处理中). Not part of
    # the version: the node adds it when it answers, from its open objections.
    under_objection: bool = False

    @property
    def not_penalised(self) -> bool:
        """A decision not to impose a penalty (不予行政处罚)."""
        return self.scope is Scope.ADMINISTRATIVE_PENALTY and NOT_PENALISED_MARK in self.category


@dataclass(frozen=True, slots=True)
class DomainResult:
    domain: str
    scope: Scope
    outcome: Outcome
    records: tuple[CreditRecord, ...] = ()
    excluded: tuple[tuple[Exclusion, int], ...] = ()

    @property
    def excluded_count(self) -> int:
        return sum(n for _, n in self.excluded)


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """One region's answer about one subject."""

    subject: Subject
    region: Region
    profile: ReportProfile
    window: ReportWindow
    catalogue_version: str
    data_as_of: datetime | None
    results: tuple[DomainResult, ...]
    warnings: tuple[str, ...] = ()
    # The region's register of market entities (市场主体登记信息): whether the node looked
    # the subject up in it (it holds one, the subject is an enterprise, the answer is
    # the node's own), and the subject's entry when it has one.
    register_searched: bool = False
    registration: SubjectRegistration | None = None

    @property
    def has_records(self) -> bool:
        return any(r.outcome is Outcome.RECORDS for r in self.results)


@dataclass(frozen=True, slots=True)
class SubjectSummary:
    """The short answer a batch check needs: counted records per domain × scope."""

    subject: Subject
    hits: tuple[tuple[str, Scope, int], ...] = field(default=())

    @property
    def has_records(self) -> bool:
        return bool(self.hits)


def in_window(record: CreditRecord, window: ReportWindow) -> bool:
    """Whether a record falls inside the window at all.

    Raises nothing.
    """
    if record.scope.is_list:
        if record.decided_on > window.cutoff:
            return False
        return record.removed_on is None or record.removed_on >= window.start
    return window.contains(record.decided_on)


def exclusion(record: CreditRecord, profile: ReportProfile) -> Exclusion | None:
    """Why the profile leaves this record out, or None when it counts.

    Raises nothing.
    """
    rule = profile.exclude
    if record.status is RecordStatus.REVOKED and rule.revoked:
        return Exclusion.REVOKED
    if record.status is RecordStatus.REPAIRED and rule.credit_repaired:
        return Exclusion.CREDIT_REPAIRED
    if record.not_penalised and rule.not_penalised:
        return Exclusion.NOT_PENALISED
    if record.procedure is Procedure.SIMPLIFIED and rule.simplified_procedure:
        return Exclusion.SIMPLIFIED_PROCEDURE
    return None


@cache
def _blank_results(catalogue: Catalogue, profile: ReportProfile, kind: SubjectKind) -> tuple[DomainResult, ...]:
    # Every covered domain × profile scope answered "no record" or "not covered": the
    # answer for most subjects, built once per catalogue, profile and kind.
    return tuple(
        DomainResult(entry.domain.code, scope, Outcome.NO_RECORD if scope in entry.scopes else Outcome.NOT_COVERED)
        for entry in catalogue.for_subject(kind)
        for scope in profile.scopes
    )


@cache
def coverage(catalogue: Catalogue, profile: ReportProfile, kind: SubjectKind) -> tuple[tuple[str, Scope], ...]:
    """The domain × scope pairs a region answers for a kind of subject under a profile:
    every pair its catalogue covers among the profile's scopes, in the order of
    :func:`evaluate`'s results.

    Raises nothing.
    """
    return tuple(
        (r.domain, r.scope) for r in _blank_results(catalogue, profile, kind) if r.outcome is Outcome.NO_RECORD
    )


def _sort_key(record: CreditRecord) -> tuple[date, str]:
    return (record.decided_on, record.decision_no)


def evaluate(
    subject: Subject,
    records: Iterable[CreditRecord],
    *,
    catalogue: Catalogue,
    profile: ReportProfile,
    window: ReportWindow,
    data_as_of: datetime | None,
) -> SubjectResult:
    """One region's result for a subject: every covered domain × profile scope.

    ``records`` are the subject's current record versions in ``catalogue.region``;
    records of other subjects or of domains the catalogue does not cover are ignored.

    Raises nothing: every input is already validated.
    """
    counted: dict[tuple[str, Scope], list[CreditRecord]] = {}
    excluded: dict[tuple[str, Scope], Counter[Exclusion]] = {}
    for record in records:
        if record.subject_id != subject.id or not in_window(record, window):
            continue
        key = (record.domain, record.scope)
        reason = exclusion(record, profile)
        if reason is None:
            counted.setdefault(key, []).append(record)
        else:
            excluded.setdefault(key, Counter())[reason] += 1

    results = list(_blank_results(catalogue, profile, subject.kind))
    if counted or excluded:
        for i, blank in enumerate(results):
            key = (blank.domain, blank.scope)
            if blank.outcome is Outcome.NOT_COVERED or (key not in counted and key not in excluded):
                continue
            found = sorted(counted.get(key, ()), key=_sort_key)
            left_out = tuple(sorted(excluded.get(key, Counter()).items(), key=lambda kv: kv[0].value))
            results[i] = DomainResult(
                blank.domain, blank.scope, Outcome.RECORDS if found else Outcome.NO_RECORD, tuple(found), left_out
            )
    notes = subject.warnings + ((window.calendar_note,) if not window.calendar_exact else ())
    return SubjectResult(
        subject=subject,
        region=catalogue.region,
        profile=profile,
        window=window,
        catalogue_version=catalogue.version,
        data_as_of=data_as_of,
        results=tuple(results),
        warnings=notes,
    )


def counts(record: CreditRecord, profile: ReportProfile, window: ReportWindow) -> bool:
    """Whether the profile counts this record in the window (catalogue coverage aside).

    Raises nothing.
    """
    return record.scope in profile.scopes and in_window(record, window) and exclusion(record, profile) is None


def summary_from_counts(
    subject: Subject, counted: Iterable[tuple[str, Scope, int]], *, catalogue: Catalogue
) -> SubjectSummary:
    """A batch summary from counted records per domain × scope (as a store may compute
    them in bulk), keeping only what the region's catalogue covers for the subject.

    Raises nothing.
    """
    hits = sorted((d, s, n) for d, s, n in counted if n and catalogue.covers(d, subject.kind, s))
    return SubjectSummary(subject, tuple(hits))


def summarise(
    subject: Subject,
    records: Sequence[CreditRecord],
    *,
    catalogue: Catalogue,
    profile: ReportProfile,
    window: ReportWindow,
) -> SubjectSummary:
    """The counted records per domain × scope, for batch checks.

    Applies exactly the rules of :func:`evaluate` (and is tested to agree with it), but
    builds nothing for the many subjects that have no record at all.

    Raises nothing.
    """
    if not records:
        return SubjectSummary(subject)
    hits = Counter((r.domain, r.scope) for r in records if r.subject_id == subject.id and counts(r, profile, window))
    return summary_from_counts(subject, ((d, s, n) for (d, s), n in hits.items()), catalogue=catalogue)
