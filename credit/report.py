"""The three-region report: merging the regions' answers, and the verdict.

Every region × domain × scope of the report says one of: no record, records, not
covered (the region's catalogue does not list it) or unavailable (the region did not
answer, or did not answer for a domain its catalogue claims). The verdict is ``clean``
only when no record was found and every region answered for everything it claims;
``has_records`` when any counted record was found; otherwise ``incomplete``. A report
never says "no record" for data it did not get.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from credit.catalogue import Catalogue, Scope, domains
from credit.identifiers import Subject
from credit.profiles import ReportProfile
from credit.regions import Region
from credit.rules import CreditRecord, Outcome, SubjectResult
from credit.window import ReportWindow


class RegionStatus(enum.StrEnum):
    __hash__ = str.__hash__

    ANSWERED = "answered"
    UNAVAILABLE = "unavailable"  # 该地区暂不可用


class CellOutcome(enum.StrEnum):
    __hash__ = str.__hash__

    NO_RECORD = "no_record"  # 无违法违规记录
    RECORDS = "records"
    NOT_COVERED = "not_covered"  # 该地区未覆盖
    UNAVAILABLE = "unavailable"  # 该地区暂不可用


class Source(enum.StrEnum):
    """Where a region's answer came from."""

    __hash__ = str.__hash__

    NODE = "node"  # the region's own node
    REPLICA = "replica"  # a peer node's replica of the region (the region's node did not answer)


class Verdict(enum.StrEnum):
    __hash__ = str.__hash__

    CLEAN = "clean"
    HAS_RECORDS = "has_records"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class RegionFailure:
    """Why a region gave no answer (timeout, unreachable, circuit open, refused…)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ReplicaResult(SubjectResult):
    """A region's answer computed by another region's node from its replica of the
    region's records, under the same rules; ``replica_as_of`` is when that replica was
    last known to hold everything the region had."""

    served_by: Region | None = None
    replica_as_of: datetime | None = None

    @classmethod
    def of(cls, result: SubjectResult, *, served_by: Region, replica_as_of: datetime | None) -> ReplicaResult:
        return cls(
            subject=result.subject,
            region=result.region,
            profile=result.profile,
            window=result.window,
            catalogue_version=result.catalogue_version,
            data_as_of=result.data_as_of,
            results=result.results,
            warnings=result.warnings,
            # Registers are not replicated: a replica's answer never looked in one.
            register_searched=False,
            registration=None,
            served_by=served_by,
            replica_as_of=replica_as_of,
        )


@dataclass(frozen=True, slots=True)
class RegionOutcome:
    region: Region
    status: RegionStatus
    catalogue_version: str = ""
    data_as_of: datetime | None = None
    reason: str = ""
    warnings: tuple[str, ...] = ()
    source: Source = Source.NODE
    served_by: Region | None = None  # with source REPLICA: the node that answered
    replica_as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cell:
    """One region's answer for one domain × scope."""

    region: Region
    outcome: CellOutcome
    records: tuple[CreditRecord, ...] = ()
    excluded: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReportLine:
    domain: str
    scope: Scope
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class MergedReport:
    subject: Subject
    profile: ReportProfile
    window: ReportWindow
    regions: tuple[RegionOutcome, ...]
    lines: tuple[ReportLine, ...]
    verdict: Verdict


def merge(
    subject: Subject,
    profile: ReportProfile,
    window: ReportWindow,
    *,
    catalogues: Mapping[Region, Catalogue | None],
    answers: Mapping[Region, SubjectResult | RegionFailure],
) -> MergedReport:
    """One report from the regions' answers.

    ``catalogues`` are what each region claims (None when the gateway does not know);
    ``answers`` hold each region's result or the reason it has none. A result served
    from a peer's replica (:class:`ReplicaResult`) counts as the region's answer, and
    the region's outcome says where it came from and how fresh it is. Lines are every
    domain × profile scope that some region covers for the subject's kind, in domain
    registry order; each line has a cell for every region.

    Raises nothing: a missing or failed region makes the report incomplete, never wrong.
    """
    regions = tuple(sorted(answers, key=lambda r: list(Region).index(r)))
    claimed: dict[Region, set[tuple[str, Scope]] | None] = {}
    keys: set[tuple[str, Scope]] = set()
    for region in regions:
        catalogue = catalogues.get(region)
        if catalogue is None:
            claimed[region] = None
            continue
        cover = {
            (entry.domain.code, scope)
            for entry in catalogue.for_subject(subject.kind)
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
        cells = tuple(_cell(region, (domain, scope), claimed[region], by_region.get(region)) for region in regions)
        lines.append(ReportLine(domain, scope, cells))
    return MergedReport(subject, profile, window, tuple(outcomes), tuple(lines), verdict_of(lines))


# Cells without records or reasons are the same everywhere: build each once.
_PLAIN = {(region, outcome): Cell(region, outcome) for region in Region for outcome in CellOutcome}


def _cell(
    region: Region,
    key: tuple[str, Scope],
    claimed: set[tuple[str, Scope]] | None,
    answer: Mapping[tuple[str, Scope], tuple[Outcome, tuple[CreditRecord, ...], int]] | None,
) -> Cell:
    if claimed is not None and key not in claimed:
        return _PLAIN[region, CellOutcome.NOT_COVERED]
    if answer is None:
        return Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未应答 (the region did not answer)")
    found = answer.get(key)
    if found is None or found[0] is Outcome.NOT_COVERED:
        if claimed is None and found is not None:
            return _PLAIN[region, CellOutcome.NOT_COVERED]
        # The catalogue claims it (or is unknown) but the answer lacks it: never "no record".
        return Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未就此领域应答 (no answer for this domain)")
    outcome, records, excluded = found
    if outcome is Outcome.RECORDS:
        return Cell(region, CellOutcome.RECORDS, records, excluded)
    if not excluded:
        return _PLAIN[region, CellOutcome.NO_RECORD]
    return Cell(region, CellOutcome.NO_RECORD, (), excluded)


def verdict_of(lines: list[ReportLine] | tuple[ReportLine, ...]) -> Verdict:
    """``has_records`` on any record; ``clean`` only when nothing is unavailable."""
    cells = [cell for line in lines for cell in line.cells]
    if any(cell.outcome is CellOutcome.RECORDS for cell in cells):
        return Verdict.HAS_RECORDS
    if not cells or any(cell.outcome is CellOutcome.UNAVAILABLE for cell in cells):
        return Verdict.INCOMPLETE
    return Verdict.CLEAN
