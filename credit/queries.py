"""What a node is asked and what it answers, beyond one subject's result: the query
options, a batch check's short answers and joint discipline (联合惩戒). Shared by the node
that computes them, the wire that carries them and the gateway that reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from credit.catalogue import Scope
from credit.errors import InvalidInput
from credit.identifiers import Subject, SubjectKind
from credit.profiles import ReportProfile
from credit.regions import Region
from credit.rules import CreditRecord, RecordStatus, SubjectSummary
from credit.window import ReportWindow

# The longest purpose (查询事由) a query may carry, at every front door and node.
MAX_PURPOSE = 200
# The lists joint discipline (联合惩戒) looks at unless asked for others.
DISCIPLINE_SCOPES = (Scope.SERIOUS_DISHONESTY_LIST, Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST, Scope.FATAL_ACCIDENT_LIST)


def check_purpose(purpose: str) -> None:
    """Raises: InvalidInput: a purpose longer than :data:`MAX_PURPOSE`."""
    if len(purpose) > MAX_PURPOSE:
        raise InvalidInput.for_field("purpose", f"查询事由过长 (purpose longer than {MAX_PURPOSE} characters)")


@dataclass(frozen=True, slots=True)
class ReplicaFreshness:
    """How fresh a node's replica of another region is."""

    last_seq: int
    synced_at: datetime | None  # last known to hold all the origin had
    origin_data_as_of: datetime | None  # the origin's own data as-of, as it last said


@dataclass(frozen=True, slots=True)
class QueryOptions:
    profile: str = ""
    years: int = 0
    application_date: date | None = None


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """One subject of a batch: its summary, or why its identifier was rejected."""

    raw_id: str
    summary: SubjectSummary | None
    rejected: str = ""


@dataclass(frozen=True, slots=True)
class BatchResult:
    profile: ReportProfile
    window: ReportWindow
    catalogue_version: str
    data_as_of: datetime | None
    checks: list[SubjectCheck]


@dataclass(frozen=True, slots=True)
class SparseBatch:
    """A batch check's answer without an object per plain subject (found with no record,
    no warning): every subject's kind in order (None: its identifier was rejected), and,
    by index, the checks of the subjects that are not plain."""

    profile: ReportProfile
    window: ReportWindow
    catalogue_version: str
    data_as_of: datetime | None
    kinds: list[SubjectKind | None]
    notable: dict[int, SubjectCheck]

    @classmethod
    def of(cls, batch: BatchResult) -> SparseBatch:
        """The sparse form of a full answer."""
        kinds: list[SubjectKind | None] = []
        notable: dict[int, SubjectCheck] = {}
        for index, check in enumerate(batch.checks):
            summary = check.summary
            kinds.append(None if summary is None else summary.subject.kind)
            if summary is None or summary.hits or summary.subject.warnings:
                notable[index] = check
        return cls(batch.profile, batch.window, batch.catalogue_version, batch.data_as_of, kinds, notable)


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One subject's line of a region's batch answer, as the gateway tabulates it: its
    kind (None when its identifier was rejected), why it was rejected, and its hits as
    (domain, scope, count)."""

    kind: SubjectKind | None
    rejected: str = ""
    hits: tuple[tuple[str, Scope, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """One entry of a node's change feed as a follower that only marks what changed
    reads it: the feed position and the record version it stored."""

    seq: int
    record_id: str
    version: int


@dataclass(frozen=True, slots=True)
class RegionDiscipline:
    """One other region's discipline list entries for a subject, from the replica."""

    region: Region
    replica: ReplicaFreshness | None  # None: the answering node keeps no replica of the region
    entries: tuple[CreditRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class JointDiscipline:
    subject: Subject
    on_date: date
    scopes: tuple[Scope, ...]
    regions: tuple[RegionDiscipline, ...]


def in_force(record: CreditRecord, day: date) -> bool:
    """A list entry in force on ``day``: listed by then, not removed, neither revoked nor repaired."""
    return (
        record.status is RecordStatus.IN_FORCE
        and record.decided_on <= day
        and (record.removed_on is None or record.removed_on > day)
    )
