"""What a node does, in the domain's words; the gRPC servicer only translates to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from credit.catalogue import Catalogue
from credit.errors import BatchTooLarge, CreditError, InvalidInput
from credit.identifiers import Subject, SubjectKind, parse_subject
from credit.profiles import ReportProfile, get_profile
from credit.rules import SubjectResult, SubjectSummary, evaluate, summary_from_counts
from credit.window import ReportWindow, compute_window
from nodes.store import RecordStore

CHINA_TZ = ZoneInfo("Asia/Shanghai")
MAX_PURPOSE = 200


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


class NodeService:
    def __init__(
        self,
        *,
        store: RecordStore,
        catalogue: Catalogue,
        default_profile: str = "",
        pilot_codes: frozenset[str] = frozenset(),
        max_batch: int = 10_000,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.default_profile = default_profile
        self.pilot_codes = pilot_codes
        self.max_batch = max_batch

    @property
    def region(self) -> str:
        return self.catalogue.region.value

    def _today(self) -> date:
        return datetime.now(CHINA_TZ).date()

    def _rules(self, options: QueryOptions) -> tuple[ReportProfile, ReportWindow]:
        profile = get_profile(options.profile or self.default_profile, field="options.profile")
        window = compute_window(options.application_date or self._today(), options.years, profile)
        return profile, window

    @staticmethod
    def _check_purpose(purpose: str) -> None:
        if len(purpose) > MAX_PURPOSE:
            raise InvalidInput.for_field("purpose", f"查询事由过长 (purpose longer than {MAX_PURPOSE} characters)")

    async def catalogue_as_of(self) -> tuple[Catalogue, datetime | None]:
        return self.catalogue, await self.store.data_as_of()

    async def query(
        self, subject_id: str, kind: SubjectKind | None, options: QueryOptions, *, purpose: str = ""
    ) -> SubjectResult:
        """The region's result for one subject.

        Raises:
            InvalidIdentifier: the subject identifier is invalid.
            UnknownName: an unknown profile.
            InvalidWindow: a window the profile does not offer.
            InvalidInput: an over-long purpose.
        """
        self._check_purpose(purpose)
        subject = parse_subject(
            subject_id, kind=kind, pilot_codes=self.pilot_codes, today=self._today(), field="subject_id"
        )
        profile, window = self._rules(options)
        records = await self.store.current_for(subject.id)
        return evaluate(
            subject,
            records,
            catalogue=self.catalogue,
            profile=profile,
            window=window,
            data_as_of=await self.store.data_as_of(),
        )

    async def check(self, subject_ids: Sequence[str], options: QueryOptions, *, purpose: str = "") -> BatchResult:
        """Short answers for many subjects; invalid identifiers are answered as rejected.

        Raises:
            BatchTooLarge: more subjects than one call takes.
            UnknownName: an unknown profile.
            InvalidWindow: a window the profile does not offer.
            InvalidInput: an empty batch or an over-long purpose.
        """
        if not subject_ids:
            raise InvalidInput.for_field("subject_ids", "批量核查名单为空 (the batch is empty)")
        if len(subject_ids) > self.max_batch:
            raise BatchTooLarge.for_field(
                "subject_ids",
                f"单次最多 {self.max_batch} 个主体，实际 {len(subject_ids)} "
                f"(at most {self.max_batch} subjects per call, got {len(subject_ids)}: split the list into chunks)",
            )
        self._check_purpose(purpose)
        profile, window = self._rules(options)
        today = self._today()
        parsed: list[Subject | str] = []
        for raw in subject_ids:
            try:
                parsed.append(parse_subject(raw, pilot_codes=self.pilot_codes, today=today))
            except CreditError as exc:
                parsed.append(exc.detail)
        valid_ids = [p.id for p in parsed if isinstance(p, Subject)]
        found = await self.store.counted(valid_ids, profile, window)
        checks = []
        for raw, item in zip(subject_ids, parsed, strict=True):
            if isinstance(item, str):
                checks.append(SubjectCheck(raw, None, item))
                continue
            counted = found.get(item.id)
            summary = summary_from_counts(item, counted, catalogue=self.catalogue) if counted else SubjectSummary(item)
            checks.append(SubjectCheck(raw, summary))
        return BatchResult(profile, window, self.catalogue.version, await self.store.data_as_of(), checks)
