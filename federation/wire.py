"""The node contract on the wire: domain values to and from their ``credit.v1`` protobuf
messages, both directions. Nodes encode their answers with it, the gateway and peer nodes
decode them; the change feed's stored-row encoder stays with the node (``nodes.feed``)."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, TypeVar

from credit.cases import Attachment, Case, CaseKind, CaseState, Correction, Resolution
from credit.catalogue import Catalogue, Scope, build_catalogue
from credit.errors import InvalidInput, InvalidWindow
from credit.identifiers import Subject, SubjectKind
from credit.profiles import ReportProfile
from credit.queries import (
    BatchResult,
    ChangeNotice,
    CheckLine,
    JointDiscipline,
    QueryOptions,
    RegionDiscipline,
    ReplicaFreshness,
    SparseBatch,
)
from credit.regions import Region
from credit.registers import SubjectRegistration
from credit.rules import (
    CreditRecord,
    DomainResult,
    Exclusion,
    Outcome,
    Procedure,
    Provenance,
    RecordStatus,
    SubjectResult,
    SubjectSummary,
    coverage,
)
from credit.window import ReportWindow
from protos.credit.v1 import node_pb2 as pb

# The generated stubs type enum fields as the enum "class" (an int subclass that exists
# only for the type checker), while ``EnumTypeWrapper.Value`` is typed as returning int;
# the values are those ints, so the casts only name them as the field type.
_E = TypeVar("_E", bound=enum.Enum)


def _wire(members: type[_E], wire_enum: Any, prefix: str) -> dict[_E, Any]:
    # Each domain enum member maps to the protobuf value named PREFIX_MEMBER.
    return {m: wire_enum.Value(f"{prefix}_{m.name}") for m in members}


KIND_TO_PB: dict[SubjectKind, pb.SubjectKind] = _wire(SubjectKind, pb.SubjectKind, "SUBJECT_KIND")
KIND_FROM_PB: dict[pb.SubjectKind, SubjectKind] = {v: k for k, v in KIND_TO_PB.items()}
SCOPE_TO_PB: dict[Scope, pb.Scope] = _wire(Scope, pb.Scope, "SCOPE")
SCOPE_FROM_PB: dict[pb.Scope, Scope] = {v: k for k, v in SCOPE_TO_PB.items()}
OUTCOME_TO_PB: dict[Outcome, pb.Outcome] = _wire(Outcome, pb.Outcome, "OUTCOME")
OUTCOME_FROM_PB: dict[pb.Outcome, Outcome] = {v: k for k, v in OUTCOME_TO_PB.items()}
PROCEDURE_TO_PB: dict[Procedure, pb.Procedure] = _wire(Procedure, pb.Procedure, "PROCEDURE")
PROCEDURE_FROM_PB: dict[pb.Procedure, Procedure] = {v: k for k, v in PROCEDURE_TO_PB.items()}
STATUS_TO_PB: dict[RecordStatus, pb.RecordStatus] = _wire(RecordStatus, pb.RecordStatus, "RECORD_STATUS")
STATUS_FROM_PB: dict[pb.RecordStatus, RecordStatus] = {v: k for k, v in STATUS_TO_PB.items()}
EXCLUSION_TO_PB: dict[Exclusion, pb.Exclusion] = _wire(Exclusion, pb.Exclusion, "EXCLUSION")
CASE_KIND_TO_PB: dict[CaseKind, pb.ObjectionKind] = _wire(CaseKind, pb.ObjectionKind, "OBJECTION_KIND")
CASE_KIND_FROM_PB: dict[pb.ObjectionKind, CaseKind] = {v: k for k, v in CASE_KIND_TO_PB.items()}
CASE_STATE_TO_PB: dict[CaseState, pb.ObjectionState] = _wire(CaseState, pb.ObjectionState, "OBJECTION_STATE")
CASE_STATE_FROM_PB: dict[pb.ObjectionState, CaseState] = {v: k for k, v in CASE_STATE_TO_PB.items()}
RESOLUTION_TO_PB: dict[Resolution, pb.Resolution] = _wire(Resolution, pb.Resolution, "RESOLUTION")
RESOLUTION_FROM_PB: dict[pb.Resolution, Resolution] = {v: k for k, v in RESOLUTION_TO_PB.items()}


def date_to_pb(value: date) -> pb.Date:
    return pb.Date(year=value.year, month=value.month, day=value.day)


def date_from_pb(value: pb.Date, field: str) -> date:
    """Raises: InvalidWindow: not a calendar date."""
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        raise InvalidWindow.for_field(
            field, f"日期 {value.year}-{value.month}-{value.day} 无效 (not a calendar date)"
        ) from None


def set_time(target: object, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)  # type: ignore[attr-defined]


def options_to_pb(options: QueryOptions) -> pb.QueryOptions:
    out = pb.QueryOptions(profile=options.profile, years=options.years)
    if options.application_date:
        out.application_date.CopyFrom(date_to_pb(options.application_date))
    return out


def query_to_pb(
    subject: Subject, options: QueryOptions, purpose: str, *, known_coverage: bytes = b""
) -> pb.QuerySubjectRequest:
    return pb.QuerySubjectRequest(
        subject_id=subject.id,
        subject_kind=KIND_TO_PB[subject.kind],
        options=options_to_pb(options),
        purpose=purpose,
        known_coverage=known_coverage,
    )


# Lean answers: a caller that holds the region's catalogue says which coverage it knows
# (``QuerySubjectRequest.known_coverage``); a node whose coverage is that one leaves the
# plain "no record" pairs out (most of every answer) and says so
# (``SubjectResult.no_record_omitted``); the caller puts them back from the catalogue it
# named. A caller that names nothing, or another coverage, gets every pair, and a node
# that predates the field answers every pair and never sets the flag: nobody reads a
# missing pair as "no record" unless the node said that is what it means.


@lru_cache(maxsize=64)  # catalogues compare by identity: one fetched anew is a new key
def coverage_digest(catalogue: Catalogue, profile: ReportProfile, kind: SubjectKind) -> bytes:
    """The digest of :func:`credit.rules.coverage` that ``known_coverage`` carries: the
    first 16 bytes of the SHA-256 of one line ``DOMAIN<tab>SCOPE`` per pair, in order."""
    lines = "".join(f"{domain}\t{scope.value}\n" for domain, scope in coverage(catalogue, profile, kind))
    return hashlib.sha256(lines.encode()).digest()[:16]


def caller_knows(known_coverage: bytes, catalogue: Catalogue, result: SubjectResult) -> bool:
    """Whether a caller that named ``known_coverage`` holds the coverage ``result`` was
    evaluated under (``catalogue`` is the one the node evaluated with), so that the plain
    "no record" pairs may be left out of the answer."""
    return bool(known_coverage) and known_coverage == coverage_digest(catalogue, result.profile, result.subject.kind)


def correction_to_pb(correction: Correction) -> pb.Correction:
    out = pb.Correction(
        category=correction.category or "", content=correction.content or "", decision_no=correction.decision_no or ""
    )
    for name in ("decided_on", "publicity_until", "removed_on"):
        value = getattr(correction, name)
        if value is not None:
            getattr(out, name).CopyFrom(date_to_pb(value))
    return out


def options_from_pb(message: pb.QueryOptions) -> QueryOptions:
    """Raises: InvalidWindow: an impossible application date."""
    application = (
        date_from_pb(message.application_date, "options.application_date")
        if message.HasField("application_date")
        else None
    )
    return QueryOptions(profile=message.profile, years=message.years, application_date=application)


def catalogue_to_pb(catalogue: Catalogue, data_as_of: datetime | None) -> pb.Catalogue:
    out = pb.Catalogue(region=catalogue.region.value, version=catalogue.version)
    for entry in catalogue.entries:
        out.entries.add(
            domain=entry.domain.code,
            domain_name=entry.domain.name,
            subject_kind=KIND_TO_PB[entry.subject],
            scopes=[SCOPE_TO_PB[s] for s in entry.scopes],
            authorities=entry.authorities,
        )
    set_time(out.data_as_of, data_as_of)
    return out


def profile_to_pb(profile: ReportProfile) -> pb.ProfileRef:
    return pb.ProfileRef(id=profile.id, version=profile.version)


def window_to_pb(window: ReportWindow) -> pb.Window:
    return pb.Window(
        application_date=date_to_pb(window.application_date),
        years=window.years,
        start=date_to_pb(window.start),
        cutoff=date_to_pb(window.cutoff),
        calendar_exact=window.calendar_exact,
        calendar_note=window.calendar_note,
    )


def record_to_pb(record: CreditRecord, out: pb.CreditRecord) -> None:
    out.record_id = record.record_id
    out.version = record.version
    out.subject_id = record.subject_id
    out.subject_kind = KIND_TO_PB[record.subject_kind]
    out.subject_name = record.subject_name
    out.domain = record.domain
    out.scope = SCOPE_TO_PB[record.scope]
    out.decision_no = record.decision_no
    out.authority = record.authority
    out.decided_on.CopyFrom(date_to_pb(record.decided_on))
    out.category = record.category
    out.content = record.content
    out.procedure = PROCEDURE_TO_PB[record.procedure]
    out.status = STATUS_TO_PB[record.status]
    if record.publicity_until:
        out.publicity_until.CopyFrom(date_to_pb(record.publicity_until))
    if record.removed_on:
        out.removed_on.CopyFrom(date_to_pb(record.removed_on))
    if record.provenance:
        out.provenance.source = record.provenance.source
        out.provenance.content_hash = record.provenance.content_hash
        out.provenance.ingested_at.FromDatetime(record.provenance.ingested_at)
    if record.under_objection:
        out.under_objection = True


def result_to_pb(result: SubjectResult, *, omit_no_record: bool = False) -> pb.SubjectResult:
    """A node's answer. With ``omit_no_record`` (only for a caller that holds the coverage,
    :func:`caller_knows`), the plain "no record" pairs are left out and the answer says so."""
    out = pb.SubjectResult(
        region=result.region.value,
        subject_id=result.subject.id,
        subject_kind=KIND_TO_PB[result.subject.kind],
        profile=profile_to_pb(result.profile),
        window=window_to_pb(result.window),
        catalogue_version=result.catalogue_version,
        warnings=result.warnings,
    )
    set_time(out.data_as_of, result.data_as_of)
    if result.register_searched:
        out.register_searched = True
    if result.registration is not None:
        registration_to_pb(result.registration, out.registration)
    if omit_no_record:
        out.no_record_omitted = True
    encoded = []
    for item in result.results:
        if item.outcome is Outcome.NOT_COVERED:
            continue  # implied by the catalogue, which the caller holds: keep replies small
        if not item.records and not item.excluded:
            if not omit_no_record:
                encoded.append(_plain_result(item.domain, item.scope, item.outcome))
            continue
        domain_result = pb.DomainResult(
            domain=item.domain, scope=SCOPE_TO_PB[item.scope], outcome=OUTCOME_TO_PB[item.outcome]
        )
        for record in item.records:
            record_to_pb(record, domain_result.records.add())
        for reason, count in item.excluded:
            domain_result.excluded.add(reason=EXCLUSION_TO_PB[reason], count=count)
        encoded.append(domain_result)
    out.results.extend(encoded)
    return out


def registration_to_pb(registration: SubjectRegistration, out: pb.Registration) -> None:
    out.name = registration.name
    out.legal_representative = registration.legal_rep
    out.address = registration.address
    out.authority = registration.authority
    out.status = registration.status
    if registration.established_on is not None:
        out.established_on.CopyFrom(date_to_pb(registration.established_on))


def registration_from_pb(region: Region, subject_id: str, message: pb.Registration) -> SubjectRegistration:
    """Raises: InvalidWindow: an impossible established date."""
    return SubjectRegistration(
        subject_id=subject_id,
        name=message.name,
        region=region,
        legal_rep=message.legal_representative,
        address=message.address,
        authority=message.authority,
        established_on=(
            date_from_pb(message.established_on, "registration.established_on")
            if message.HasField("established_on")
            else None
        ),
        status=message.status,
    )


@lru_cache(maxsize=8192)
def _plain_result(domain: str, scope: Scope, outcome: Outcome) -> pb.DomainResult:
    # "No record" and "not covered" answers are most of every reply; encode each once.
    return pb.DomainResult(domain=domain, scope=SCOPE_TO_PB[scope], outcome=OUTCOME_TO_PB[outcome])


def _check_to_pb(out: pb.SubjectCheck, summary: SubjectSummary) -> None:
    out.subject_kind = KIND_TO_PB[summary.subject.kind]
    if summary.subject.warnings:
        out.warnings.extend(summary.subject.warnings)
    for domain, scope, count in summary.hits:
        out.hits.add(domain=domain, scope=SCOPE_TO_PB[scope], count=count)


def batch_to_pb(region: str, batch: BatchResult, *, sparse: bool = False) -> pb.CheckSubjectsResponse:
    """A node's answer to a batch check: a line per subject, or, ``sparse``, as
    :func:`sparse_batch_to_pb` encodes it."""
    if sparse:
        return sparse_batch_to_pb(region, SparseBatch.of(batch))
    out = _batch_head(region, batch)
    add = out.checks.add
    kinds = KIND_TO_PB
    for check in batch.checks:
        summary = check.summary
        if summary is None:
            add(subject_id=check.raw_id, rejected=check.rejected)
        elif not summary.hits and not summary.subject.warnings:
            add(subject_id=check.raw_id, subject_kind=kinds[summary.subject.kind])  # most subjects
        else:
            _check_to_pb(add(subject_id=check.raw_id), summary)
    return out


def sparse_batch_to_pb(region: str, batch: SparseBatch) -> pb.CheckSubjectsResponse:
    """A sparse answer to a batch check: only the lines of subjects that are not plain
    (rejected, with hits or with warnings), each with its index, and every subject's
    kind as one byte (see ``CheckSubjectsResponse``)."""
    out = _batch_head(region, batch)
    out.sparse = True
    out.kinds = bytes(map(_KIND_BYTE.__getitem__, batch.kinds))
    add = out.checks.add
    for index, check in batch.notable.items():
        summary = check.summary
        if summary is None:
            add(subject_id=check.raw_id, rejected=check.rejected, index=index)
        else:
            _check_to_pb(add(subject_id=check.raw_id, index=index), summary)
    return out


_KIND_BYTE: dict[SubjectKind | None, int] = {None: 0}
_KIND_BYTE.update((kind, int(code)) for kind, code in KIND_TO_PB.items())


def _batch_head(region: str, batch: BatchResult | SparseBatch) -> pb.CheckSubjectsResponse:
    out = pb.CheckSubjectsResponse(
        region=region,
        profile=profile_to_pb(batch.profile),
        window=window_to_pb(batch.window),
        catalogue_version=batch.catalogue_version,
    )
    set_time(out.data_as_of, batch.data_as_of)
    return out


def change_to_pb(region: str, seq: int, record: CreditRecord) -> pb.RecordChange:
    out = pb.RecordChange(seq=seq, region=region)
    record_to_pb(record, out.record)
    return out


def replica_result_to_pb(
    result: SubjectResult,
    *,
    served_by: str,
    replica_as_of: datetime | None,
    last_seq: int,
    omit_no_record: bool = False,
) -> pb.SubjectResult:
    """A result computed from a replica, stamped with who served it and how fresh it is
    (``omit_no_record`` as in :func:`result_to_pb`)."""
    out = result_to_pb(result, omit_no_record=omit_no_record)
    out.replica.served_by = served_by
    out.replica.last_seq = last_seq
    set_time(out.replica.replica_as_of, replica_as_of)
    return out


def scopes_from_pb(values: Iterable[int], field: str) -> list[Scope]:
    """Raises: InvalidInput: an unset or unknown scope."""
    scopes = []
    for value in values:
        scope = SCOPE_FROM_PB.get(value)  # type: ignore[call-overload]
        if scope is None:
            raise InvalidInput.for_field(field, f"未知数据范围 {value} (unknown scope {value})")
        scopes.append(scope)
    return scopes


def discipline_to_pb(region: str, answer: JointDiscipline) -> pb.JointDisciplineResponse:
    out = pb.JointDisciplineResponse(
        region=region,
        subject_id=answer.subject.id,
        subject_kind=KIND_TO_PB[answer.subject.kind],
        on_date=date_to_pb(answer.on_date),
        scopes=[SCOPE_TO_PB[s] for s in answer.scopes],
        warnings=answer.subject.warnings,
    )
    for item in answer.regions:
        entry = out.regions.add(region=item.region.value, replicated=item.replica is not None)
        for record in item.entries:
            record_to_pb(record, entry.entries.add())
        if item.replica is not None:
            entry.last_seq = item.replica.last_seq
            set_time(entry.replica_as_of, item.replica.synced_at)
            set_time(entry.data_as_of, item.replica.origin_data_as_of)
    return out


# From the wire: what the gateway reads back from a node.


def _date_or_none(message: pb.Date, present: bool) -> date | None:
    return date(message.year, message.month, message.day) if present else None


def catalogue_from_pb(message: pb.Catalogue) -> Catalogue:
    """Raises: UnknownName: a domain or scope this build does not know."""
    entries: list[dict[str, object]] = [
        {
            "domain": entry.domain,
            "subject": KIND_FROM_PB[entry.subject_kind].value,
            "scopes": [SCOPE_FROM_PB[s].value for s in entry.scopes],
            "authorities": list(entry.authorities),
        }
        for entry in message.entries
    ]
    return build_catalogue(Region(message.region), message.version, entries)


def window_from_pb(message: pb.Window) -> ReportWindow:
    return ReportWindow(
        application_date=date_from_pb(message.application_date, "window.application_date"),
        years=message.years,
        start=date_from_pb(message.start, "window.start"),
        cutoff=date_from_pb(message.cutoff, "window.cutoff"),
        calendar_exact=message.calendar_exact,
    )


def record_from_pb(region: Region, message: pb.CreditRecord) -> CreditRecord:
    provenance = None
    if message.HasField("provenance"):
        provenance = Provenance(
            message.provenance.source,
            message.provenance.ingested_at.ToDatetime(tzinfo=UTC),
            message.provenance.content_hash,
        )
    return CreditRecord(
        record_id=message.record_id,
        version=message.version,
        region=region,
        subject_id=message.subject_id,
        subject_kind=KIND_FROM_PB[message.subject_kind],
        subject_name=message.subject_name,
        domain=message.domain,
        scope=SCOPE_FROM_PB[message.scope],
        decision_no=message.decision_no,
        authority=message.authority,
        decided_on=date_from_pb(message.decided_on, "record.decided_on"),
        category=message.category,
        content=message.content,
        procedure=PROCEDURE_FROM_PB[message.procedure],
        status=STATUS_FROM_PB[message.status],
        publicity_until=_date_or_none(message.publicity_until, message.HasField("publicity_until")),
        removed_on=_date_or_none(message.removed_on, message.HasField("removed_on")),
        provenance=provenance,
        under_objection=message.under_objection,
    )


_EXCLUSION_FROM_PB = {v: k for k, v in EXCLUSION_TO_PB.items()}


@lru_cache(maxsize=8192)
def _plain_from_pb(domain: str, scope: int, outcome: int) -> DomainResult:
    # The decoding twin of _plain_result: most answers are "no record" / "not covered".
    return DomainResult(domain, SCOPE_FROM_PB[scope], OUTCOME_FROM_PB[outcome])  # type: ignore[index]


@lru_cache(maxsize=8192)
def _no_record(domain: str, scope: Scope) -> DomainResult:
    return DomainResult(domain, scope, Outcome.NO_RECORD)


def _with_no_record(
    answered: tuple[DomainResult, ...], pairs: tuple[tuple[str, Scope], ...]
) -> tuple[DomainResult, ...]:
    # Every covered pair in coverage order, as a node that leaves nothing out answers them.
    given = {(item.domain, item.scope): item for item in answered}
    filled = [given.pop(pair) if pair in given else _no_record(*pair) for pair in pairs]
    return (*filled, *given.values())  # nothing is left over from a node with the same coverage


def result_from_pb(
    message: pb.SubjectResult, subject: Subject, profile: ReportProfile, *, catalogue: Catalogue | None = None
) -> SubjectResult:
    """A node's answer as a domain value. An answer that left the plain "no record" pairs
    out (``no_record_omitted``) gets them back from ``catalogue``: the one whose coverage
    the request named (:func:`coverage_digest`).

    Raises:
        KeyError: an enum value this build does not know.
        InvalidWindow: an impossible date in the answer.
        ValueError: an answer that left pairs out, without the catalogue to put them back.
    """
    region = Region(message.region)
    results = tuple(
        _plain_from_pb(item.domain, item.scope, item.outcome)
        if not item.records and not item.excluded
        else DomainResult(
            item.domain,
            SCOPE_FROM_PB[item.scope],
            OUTCOME_FROM_PB[item.outcome],
            tuple(record_from_pb(region, r) for r in item.records),
            tuple((_EXCLUSION_FROM_PB[e.reason], e.count) for e in item.excluded),
        )
        for item in message.results
    )
    if message.no_record_omitted:
        if catalogue is None:
            raise ValueError("the answer leaves its no-record pairs out, and no catalogue says which they are")
        results = _with_no_record(results, coverage(catalogue, profile, subject.kind))
    return SubjectResult(
        subject=subject,
        region=region,
        profile=profile,
        window=window_from_pb(message.window),
        catalogue_version=message.catalogue_version,
        data_as_of=message.data_as_of.ToDatetime(tzinfo=UTC) if message.HasField("data_as_of") else None,
        results=results,
        warnings=tuple(message.warnings),
        register_searched=message.register_searched,
        registration=(
            registration_from_pb(region, subject.id, message.registration) if message.HasField("registration") else None
        ),
    )


def case_to_pb(case: Case) -> pb.Objection:
    out = pb.Objection(
        number=case.number,
        region=case.region.value,
        kind=CASE_KIND_TO_PB[case.kind],
        state=CASE_STATE_TO_PB[case.state],
        record_id=case.record_id,
        record_version=case.record_version,
        subject_id=case.subject_id,
        reason=case.reason,
        filed_by=case.filed_by,
        resolution_note=case.resolution_note,
        resolved_by=case.resolved_by,
        new_version=case.new_version,
    )
    out.filed_at.FromDatetime(case.filed_at)
    if case.attachment is not None:
        a = case.attachment
        out.attachment.CopyFrom(
            pb.Attachment(filename=a.filename, content_type=a.content_type, data=a.data, sha256=a.sha256, size=a.size)
        )
    if case.resolution is not None:
        out.resolution = RESOLUTION_TO_PB[case.resolution]
    set_time(out.resolved_at, case.resolved_at)
    if case.record is not None:
        record_to_pb(case.record, out.record)
    return out


def correction_from_pb(message: pb.Correction, present: bool) -> Correction | None:
    """The correction a resolution carries, or None when it carries none.

    Raises:
        InvalidInput: an impossible date.
    """
    if not present:
        return None
    return Correction(
        category=message.category or None,
        content=message.content or None,
        decided_on=date_from_pb(message.decided_on, "correction.decided_on")
        if message.HasField("decided_on")
        else None,
        publicity_until=date_from_pb(message.publicity_until, "correction.publicity_until")
        if message.HasField("publicity_until")
        else None,
        removed_on=date_from_pb(message.removed_on, "correction.removed_on")
        if message.HasField("removed_on")
        else None,
        decision_no=message.decision_no or None,
    )


def case_from_pb(message: pb.Objection) -> Case:
    """A case as a node sent it (what the gateway shows).

    Raises:
        InvalidInput: a malformed message.
    """
    region = Region.parse(message.region)
    attachment = None
    if message.HasField("attachment"):
        a = message.attachment
        attachment = Attachment(a.filename, a.content_type, a.sha256, a.size, a.data)
    return Case(
        number=message.number,
        region=region,
        kind=CASE_KIND_FROM_PB[message.kind],
        state=CASE_STATE_FROM_PB[message.state],
        record_id=message.record_id,
        record_version=message.record_version,
        subject_id=message.subject_id,
        reason=message.reason,
        attachment=attachment,
        filed_by=message.filed_by,
        filed_at=message.filed_at.ToDatetime(tzinfo=UTC),
        resolution=RESOLUTION_FROM_PB.get(message.resolution),
        resolution_note=message.resolution_note,
        resolved_by=message.resolved_by,
        resolved_at=message.resolved_at.ToDatetime(tzinfo=UTC) if message.HasField("resolved_at") else None,
        new_version=message.new_version,
        record=record_from_pb(region, message.record) if message.HasField("record") else None,
    )


# Batch answers, kept as the bytes they came in (a batch job stores them as they are).


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """A node's answer to one chunk of a batch check, as its wire bytes."""

    payload: bytes

    @classmethod
    def of(cls, region: str, batch: BatchResult, *, sparse: bool = False) -> CheckAnswer:
        """The answer a node gives for ``batch`` (what an in-process node client returns),
        ``sparse`` or in full (see :func:`batch_to_pb`)."""
        return cls(batch_to_pb(region, batch, sparse=sparse).SerializeToString())


_PLAIN_LINES = {kind: CheckLine(kind) for kind in SubjectKind}
_PLAIN_BY_CODE = [CheckLine(None)] * 256  # a sparse answer's kind byte → the line of a subject it leaves out
for _code, _kind in KIND_FROM_PB.items():
    _PLAIN_BY_CODE[_code] = _PLAIN_LINES[_kind]


def _line(check: pb.SubjectCheck) -> CheckLine:
    kind = KIND_FROM_PB.get(check.subject_kind)
    if check.rejected or check.hits or kind is None:
        hits = tuple((hit.domain, SCOPE_FROM_PB[hit.scope], hit.count) for hit in check.hits)
        return CheckLine(kind, check.rejected, hits)
    return _PLAIN_LINES[kind]


def check_lines(payload: bytes) -> list[CheckLine]:
    """The lines of a stored batch answer, one per subject asked, in order: from a full
    answer or a sparse one (a plain line for every subject it leaves out).

    Raises:
        google.protobuf.message.DecodeError: not a batch answer.
    """
    reply = pb.CheckSubjectsResponse.FromString(payload)
    if reply.sparse:
        lines = [_PLAIN_BY_CODE[code] for code in reply.kinds]
        for check in reply.checks:
            lines[check.index] = _line(check)
        return lines
    return [_line(check) for check in reply.checks]


def flagged_lines(payload: bytes) -> tuple[set[int], set[int], int]:
    """Which lines of a stored batch answer are rejected and which have hits, by index,
    and how many lines it holds: what counting a job's rows needs, without a line per
    subject. They agree with :func:`check_lines`.

    Raises:
        google.protobuf.message.DecodeError: not a batch answer.
    """
    reply = pb.CheckSubjectsResponse.FromString(payload)
    rejected: set[int] = set()
    hits: set[int] = set()
    if reply.sparse:
        for check in reply.checks:
            if check.rejected:
                rejected.add(check.index)
            if check.hits:
                hits.add(check.index)
        return rejected, hits, len(reply.kinds)
    for index, check in enumerate(reply.checks):
        if check.rejected:
            rejected.add(index)
        if check.hits:
            hits.add(index)
    return rejected, hits, len(reply.checks)


def change_notice_from_pb(message: pb.RecordChange) -> ChangeNotice:
    return ChangeNotice(message.seq, message.record.record_id, message.record.version)


def discipline_from_pb(message: pb.JointDisciplineResponse) -> JointDiscipline:
    """A joint-discipline answer as a domain value.

    Raises:
        InvalidInput: a malformed message.
    """
    subject = Subject(message.subject_id, KIND_FROM_PB[message.subject_kind], tuple(message.warnings))
    regions = []
    for item in message.regions:
        region = Region.parse(item.region)
        replica = None
        if item.replicated:
            replica = ReplicaFreshness(
                item.last_seq,
                item.replica_as_of.ToDatetime(tzinfo=UTC) if item.HasField("replica_as_of") else None,
                item.data_as_of.ToDatetime(tzinfo=UTC) if item.HasField("data_as_of") else None,
            )
        entries = tuple(record_from_pb(region, record) for record in item.entries)
        regions.append(RegionDiscipline(region, replica, entries))
    return JointDiscipline(
        subject,
        date_from_pb(message.on_date, "on_date"),
        tuple(SCOPE_FROM_PB[scope] for scope in message.scopes),
        tuple(regions),
    )
