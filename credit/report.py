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
from functools import lru_cache

from credit.catalogue import Catalogue, Scope, domains
from credit.identifiers import Subject, SubjectKind
from credit.profiles import ReportProfile
from credit.regions import Region
from credit.rules import CreditRecord, DomainResult, Outcome, SubjectResult
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


_REGION_ORDER = {region: i for i, region in enumerate(Region)}
_Key = tuple[str, Scope]


@dataclass(frozen=True, slots=True)
class _Layout:
    """What every report of one shape (the answering regions and their catalogues, the
    subject's kind, the profile) has in common."""

    regions: tuple[Region, ...]
    scopes: frozenset[Scope]
    claims: tuple[frozenset[_Key] | None, ...]  # per region: the pairs its catalogue lists
    keys: tuple[_Key, ...]  # the lines the catalogues make, in order
    key_set: frozenset[_Key]
    # By which regions failed: every line as it reads when each region that answered
    # said "no record" for everything it claims (see _template).
    templates: dict[tuple[bool, ...], _Template]


@dataclass(frozen=True, slots=True)
class _Template:
    """The lines of a layout when the regions that answered found nothing (see _template)."""

    lines: tuple[ReportLine, ...]  # a report with no record or exclusion has these very lines
    by_key: dict[_Key, tuple[ReportLine, bool]]  # each line, and whether a cell is unavailable
    unavailable: bool  # whether any line has an unavailable cell


@lru_cache(maxsize=256)
def _layout(
    kind: SubjectKind, profile: ReportProfile, catalogues: tuple[tuple[Region, Catalogue | None], ...]
) -> _Layout:
    # Catalogues compare by identity, so a refreshed catalogue makes a new shape; the
    # cache's bound lets the old ones go.
    scopes = frozenset(profile.scopes)
    claims: list[frozenset[_Key] | None] = []
    keys: set[_Key] = set()
    for _region, catalogue in catalogues:
        if catalogue is None:
            claims.append(None)
            continue
        cover = frozenset(
            (entry.domain.code, scope)
            for entry in catalogue.for_subject(kind)
            for scope in entry.scopes
            if scope in scopes
        )
        claims.append(cover)
        keys |= cover
    regions = tuple(region for region, _ in catalogues)
    return _Layout(regions, scopes, tuple(claims), _ordered(keys), frozenset(keys), {})


def _template(layout: _Layout, failed: tuple[bool, ...]) -> _Template:
    """The lines of the layout when the regions marked in ``failed`` did not answer and
    every other one (its catalogue known) answered "no record" for every pair its
    catalogue lists: shared by every such report, whole or line by line."""
    template = layout.templates.get(failed)
    if template is None:
        by_key: dict[_Key, tuple[ReportLine, bool]] = {}
        for key in layout.keys:
            cells = []
            for region, claimed, down in zip(layout.regions, layout.claims, failed, strict=True):
                # As _cell has it: a region that did not answer is unavailable for all
                # its catalogue lists, or for everything when its catalogue is unknown.
                if claimed is not None and key not in claimed:
                    cells.append(_PLAIN[region, CellOutcome.NOT_COVERED])
                elif down:
                    cells.append(_NO_ANSWER[region])
                else:
                    cells.append(_PLAIN[region, CellOutcome.NO_RECORD])
            unavailable = any(cell.outcome is CellOutcome.UNAVAILABLE for cell in cells)
            by_key[key] = (ReportLine(key[0], key[1], tuple(cells)), unavailable)
        template = _Template(
            tuple(line for line, _ in by_key.values()), by_key, any(flag for _, flag in by_key.values())
        )
        template = layout.templates.setdefault(failed, template)
    return template


def _ordered(keys: set[_Key] | frozenset[_Key]) -> tuple[_Key, ...]:
    """Lines in domain registry order, then scope order; domains the registry lacks last."""
    order = {code: i for i, code in enumerate(domains())}
    scope_order = {s: i for i, s in enumerate(Scope)}
    return tuple(sorted(keys, key=lambda k: (order.get(k[0], len(order)), scope_order[k[1]])))


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

    What depends only on the report's shape (which regions, their catalogues, the
    subject's kind and the profile) is worked out once per shape (:func:`_layout`). When
    every catalogue is known and every answer covers all its catalogue claims, the lines
    without a record or an exclusion are taken whole from the shape's template
    (:func:`_template`), and only the others are built cell by cell.

    Raises nothing: a missing or failed region makes the report incomplete, never wrong.
    """
    regions = tuple(sorted(answers, key=_REGION_ORDER.__getitem__))
    layout = _layout(subject.kind, profile, tuple((region, catalogues.get(region)) for region in regions))
    columns: list[dict[_Key, DomainResult] | None] = []
    outcomes = []
    extra: set[_Key] = set()
    special: set[_Key] = set()  # pairs some region answered other than a plain "no record"
    templated = True
    for region, claimed in zip(regions, layout.claims, strict=True):
        answer = answers[region]
        if isinstance(answer, RegionFailure):
            columns.append(None)
            outcomes.append(RegionOutcome(region, RegionStatus.UNAVAILABLE, reason=answer.reason))
            continue
        found = {(r.domain, r.scope): r for r in answer.results}
        columns.append(found)
        if not found.keys() <= layout.key_set:
            # Pairs no catalogue lists: lines of their own when the region says it covers them.
            # (Every result counts here, a pair said twice too; its cell takes the last.)
            extra |= {
                (r.domain, r.scope)
                for r in answer.results
                if r.scope in layout.scopes and r.outcome is not Outcome.NOT_COVERED
            } - layout.key_set
        if claimed is None or not claimed <= found.keys():
            templated = False
        elif templated:
            special.update(
                key for key, r in found.items() if (r.outcome is not Outcome.NO_RECORD or r.excluded) and key in claimed
            )
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
    template = _template(layout, tuple(column is None for column in columns)) if templated and not extra else None
    if template is not None and not special:
        # Nothing found anywhere: the report's lines are the template's, all of them.
        empty = template.unavailable or not template.lines or not regions
        verdict = Verdict.INCOMPLETE if empty else Verdict.CLEAN
        return MergedReport(subject, profile, window, tuple(outcomes), template.lines, verdict)
    shared_lines = template.by_key if template is not None else {}
    lines = []
    records = unavailable = False
    for key in layout.keys if not extra else _ordered(layout.key_set | extra):
        shared = shared_lines.get(key) if key not in special else None
        if shared is not None:
            lines.append(shared[0])
            unavailable = unavailable or shared[1]
            continue
        cells = tuple(
            _cell(region, key, claimed, column)
            for region, claimed, column in zip(regions, layout.claims, columns, strict=True)
        )
        for cell in cells:
            if cell.outcome is CellOutcome.RECORDS:
                records = True
            elif cell.outcome is CellOutcome.UNAVAILABLE:
                unavailable = True
        lines.append(ReportLine(key[0], key[1], cells))
    if records:
        verdict = Verdict.HAS_RECORDS
    elif unavailable or not lines or not regions:
        verdict = Verdict.INCOMPLETE
    else:
        verdict = Verdict.CLEAN
    return MergedReport(subject, profile, window, tuple(outcomes), tuple(lines), verdict)


# Cells without records or reasons are the same everywhere: build each once.
_PLAIN = {(region, outcome): Cell(region, outcome) for region in Region for outcome in CellOutcome}
_NO_ANSWER = {
    region: Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未应答 (the region did not answer)")
    for region in Region
}
_NO_DOMAIN_ANSWER = {
    region: Cell(region, CellOutcome.UNAVAILABLE, reason="该地区未就此领域应答 (no answer for this domain)")
    for region in Region
}


def _cell(
    region: Region,
    key: tuple[str, Scope],
    claimed: frozenset[tuple[str, Scope]] | None,
    answer: Mapping[tuple[str, Scope], DomainResult] | None,
) -> Cell:
    if claimed is not None and key not in claimed:
        return _PLAIN[region, CellOutcome.NOT_COVERED]
    if answer is None:
        return _NO_ANSWER[region]
    found = answer.get(key)
    if found is None or found.outcome is Outcome.NOT_COVERED:
        if claimed is None and found is not None:
            return _PLAIN[region, CellOutcome.NOT_COVERED]
        # The catalogue claims it (or is unknown) but the answer lacks it: never "no record".
        return _NO_DOMAIN_ANSWER[region]
    excluded = sum(n for _, n in found.excluded) if found.excluded else 0
    if found.outcome is Outcome.RECORDS:
        return Cell(region, CellOutcome.RECORDS, found.records, excluded)
    if not excluded:
        return _PLAIN[region, CellOutcome.NO_RECORD]
    return Cell(region, CellOutcome.NO_RECORD, (), excluded)
