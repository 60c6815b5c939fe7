"""What a node does, in the domain's words; the gRPC servicer only translates to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from credit.catalogue import Catalogue, Scope
from credit.clock import china_today
from credit.errors import BatchTooLarge, InvalidInput, NotFound
from credit.identifiers import ParsedBatch, Subject, SubjectKind, parse_subject, parse_subject_batch
from credit.profiles import ReportProfile, get_profile
from credit.queries import (
    DISCIPLINE_SCOPES,
    BatchResult,
    JointDiscipline,
    QueryOptions,
    RegionDiscipline,
    ReplicaFreshness,
    SparseBatch,
    SubjectCheck,
    check_purpose,
    in_force,
)
from credit.regions import Region
from credit.rules import SubjectResult, SubjectSummary, evaluate, summary_from_counts
from credit.window import ReportWindow, compute_window
from nodes.store import RecordStore

if TYPE_CHECKING:
    from nodes.objections import ObjectionDesk
    from nodes.registers import RegisterStore
    from nodes.replica import ReplicaCursor, ReplicaStore


class NodeService:
    def __init__(
        self,
        *,
        store: RecordStore,
        catalogue: Catalogue,
        default_profile: str = "",
        pilot_codes: frozenset[str] = frozenset(),
        max_batch: int = 10_000,
        replica: ReplicaStore | None = None,
        objections: ObjectionDesk | None = None,
        register: RegisterStore | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.default_profile = default_profile
        self.pilot_codes = pilot_codes
        self.max_batch = max_batch
        # The peers' records this node replicates: asked about only by name, never
        # served as this node's own.
        self.replica = replica
        # Objections and credit repair on this node's records (the store marks the
        # records under an open objection as it reads them).
        self.objections = objections
        # The region's register of market entities: an answer about an enterprise
        # carries its entry (never on a replica answer: registers are not replicated).
        self.register = register

    @property
    def region(self) -> str:
        return self.catalogue.region.value

    def _today(self) -> date:
        return china_today()

    def _rules(self, options: QueryOptions) -> tuple[ReportProfile, ReportWindow]:
        profile = get_profile(options.profile or self.default_profile, field="options.profile")
        window = compute_window(options.application_date or self._today(), options.years, profile)
        return profile, window

    async def catalogue_as_of(self) -> tuple[Catalogue, datetime | None]:
        return self.catalogue, await self.store.data_as_of()

    async def query(
        self, subject_id: str, kind: SubjectKind | None, options: QueryOptions, *, purpose: str = ""
    ) -> SubjectResult:
        """The region's result for one subject, with its entry in the region's register
        of market entities when the node holds a register and the subject is an enterprise.

        Raises:
            InvalidIdentifier: the subject identifier is invalid.
            UnknownName: an unknown profile.
            InvalidWindow: a window the profile does not offer.
            InvalidInput: an over-long purpose.
        """
        check_purpose(purpose)
        subject = parse_subject(
            subject_id, kind=kind, pilot_codes=self.pilot_codes, today=self._today(), field="subject_id"
        )
        profile, window = self._rules(options)
        records = await self.store.current_for(subject.id)  # under objection already marked
        result = evaluate(
            subject,
            records,
            catalogue=self.catalogue,
            profile=profile,
            window=window,
            data_as_of=await self.store.data_as_of(),
        )
        if subject.kind is SubjectKind.PERSON or self.register is None:
            return result
        registration = await self.register.find(subject.id)
        if registration is None and not await self.register.held():
            return result  # no register loaded here: the node cannot say the subject is unknown
        return replace(result, register_searched=True, registration=registration)

    async def check(self, subject_ids: Sequence[str], options: QueryOptions, *, purpose: str = "") -> BatchResult:
        """Short answers for many subjects; invalid identifiers are answered as rejected.

        Raises:
            BatchTooLarge: more subjects than one call takes.
            UnknownName: an unknown profile.
            InvalidWindow: a window the profile does not offer.
            InvalidInput: an empty batch or an over-long purpose.
        """
        profile, window, parsed, found = await self._counted(subject_ids, options, purpose)
        checks = []
        for index, raw in enumerate(subject_ids):
            item = parsed.subject(index)
            if isinstance(item, str):
                checks.append(SubjectCheck(raw, None, item))
                continue
            checks.append(SubjectCheck(raw, self._summary(item, found.get(item.id))))
        return BatchResult(profile, window, self.catalogue.version, await self.store.data_as_of(), checks)

    async def check_sparse(
        self, subject_ids: Sequence[str], options: QueryOptions, *, purpose: str = ""
    ) -> SparseBatch:
        """:meth:`check`, answered sparsely: a check only for the subjects that are
        rejected, have hits or carry warnings; every other one by its kind alone.

        Raises:
            BatchTooLarge: more subjects than one call takes.
            UnknownName: an unknown profile.
            InvalidWindow: a window the profile does not offer.
            InvalidInput: an empty batch or an over-long purpose.
        """
        profile, window, parsed, found = await self._counted(subject_ids, options, purpose)
        notable: dict[int, SubjectCheck] = {}
        for index, item in parsed.decided.items():
            if isinstance(item, str):
                notable[index] = SubjectCheck(subject_ids[index], None, item)
            elif item.warnings:
                notable[index] = SubjectCheck(subject_ids[index], self._summary(item, found.get(item.id)))
        if found:
            kinds = parsed.kinds
            for index, subject_id in enumerate(parsed.ids):
                counted = found.get(subject_id)
                kind = kinds[index]
                if counted and kind is not None and index not in notable:
                    summary = self._summary(Subject(subject_id, kind), counted)
                    if summary.hits:
                        notable[index] = SubjectCheck(subject_ids[index], summary)
        return SparseBatch(
            profile,
            window,
            self.catalogue.version,
            await self.store.data_as_of(),
            parsed.kinds,
            dict(sorted(notable.items())),
        )

    def _summary(self, subject: Subject, counted: list[tuple[str, Scope, int]] | None) -> SubjectSummary:
        if not counted:
            return SubjectSummary(subject)
        return summary_from_counts(subject, counted, catalogue=self.catalogue)

    async def _counted(
        self, subject_ids: Sequence[str], options: QueryOptions, purpose: str
    ) -> tuple[ReportProfile, ReportWindow, ParsedBatch, dict[str, list[tuple[str, Scope, int]]]]:
        if not subject_ids:
            raise InvalidInput.for_field("subject_ids", "批量核查名单为空 (the batch is empty)")
        if len(subject_ids) > self.max_batch:
            raise BatchTooLarge.for_field(
                "subject_ids",
                f"单次最多 {self.max_batch} 个主体，实际 {len(subject_ids)} "
                f"(at most {self.max_batch} subjects per call, got {len(subject_ids)}: split the list into chunks)",
            )
        check_purpose(purpose)
        profile, window = self._rules(options)
        parsed = parse_subject_batch(subject_ids, pilot_codes=self.pilot_codes, today=self._today())
        found = await self.store.counted([subject_id for subject_id in parsed.ids if subject_id], profile, window)
        return profile, window, parsed, found

    # The peers' replicas: answers about other regions, never this node's own data.

    def _origin(self, name: str) -> Region:
        origin = Region.parse(name, field="origin")
        if origin is self.catalogue.region:
            raise InvalidInput.for_field(
                "origin", f"本节点自己的数据不经副本查询 ({origin.value} is this node's own region: use QuerySubject)"
            )
        return origin

    async def _replica_of(self, origin: Region) -> tuple[ReplicaStore, ReplicaCursor, Catalogue]:
        cursor = await self.replica.cursor(origin) if self.replica is not None else None
        if self.replica is None or cursor is None or cursor.catalogue is None:
            raise NotFound(f"本节点没有{origin.name_zh}的数据副本 (this node keeps no replica of {origin.value})")
        return self.replica, cursor, cursor.catalogue

    async def replica_catalogue(self, origin_name: str) -> tuple[Catalogue, datetime | None]:
        """The catalogue an origin published, as this node's replica of it holds it.

        Raises:
            UnknownName, InvalidInput: not another region of the federation.
            NotFound: no replica of the origin here.
        """
        _, cursor, catalogue = await self._replica_of(self._origin(origin_name))
        return catalogue, cursor.origin_data_as_of

    async def query_replica(
        self, origin_name: str, subject_id: str, kind: SubjectKind | None, options: QueryOptions, *, purpose: str = ""
    ) -> tuple[SubjectResult, ReplicaCursor]:
        """The origin region's result for one subject, from this node's replica of it,
        under the origin's catalogue and the same rules as :meth:`query` there; with
        the replica's cursor (its as-of time).

        Raises:
            UnknownName, InvalidInput: not another region; an over-long purpose.
            NotFound: no replica of the origin here.
            InvalidIdentifier, InvalidWindow: as :meth:`query`.
        """
        origin = self._origin(origin_name)
        check_purpose(purpose)
        subject = parse_subject(
            subject_id, kind=kind, pilot_codes=self.pilot_codes, today=self._today(), field="subject_id"
        )
        profile, window = self._rules(options)
        replica, cursor, catalogue = await self._replica_of(origin)
        records = await replica.current_for(origin, subject.id)
        result = evaluate(
            subject, records, catalogue=catalogue, profile=profile, window=window, data_as_of=cursor.origin_data_as_of
        )
        return result, cursor

    async def joint_discipline(
        self,
        subject_id: str,
        kind: SubjectKind | None,
        scopes: Sequence[Scope] = (),
        on_date: date | None = None,
        *,
        purpose: str = "",
    ) -> JointDiscipline:
        """The subject's discipline list entries in force in every other region, from
        the replicas (联合惩戒).

        Raises:
            InvalidIdentifier: the subject identifier is invalid.
            InvalidInput: a scope that is not a list; an over-long purpose.
        """
        check_purpose(purpose)
        chosen = tuple(dict.fromkeys(scopes)) or DISCIPLINE_SCOPES
        not_lists = [s.value for s in chosen if not s.is_list]
        if not_lists:
            raise InvalidInput.for_field(
                "scopes",
                f"联合惩戒只查名单类数据 (joint discipline looks at list scopes only, not {', '.join(not_lists)})",
            )
        today = self._today()
        subject = parse_subject(subject_id, kind=kind, pilot_codes=self.pilot_codes, today=today, field="subject_id")
        day = on_date or today
        cursors = await self.replica.cursors() if self.replica is not None else {}
        found = await self.replica.entries_for(subject.id, chosen) if self.replica is not None else {}
        regions = []
        for region in Region:
            if region is self.catalogue.region:
                continue
            cursor = cursors.get(region)
            entries = sorted(
                (r for r in found.get(region, ()) if in_force(r, day)), key=lambda r: (r.decided_on, r.decision_no)
            )
            freshness = (
                None
                if cursor is None
                else ReplicaFreshness(cursor.last_seq, cursor.synced_at, cursor.origin_data_as_of)
            )
            regions.append(RegionDiscipline(region, freshness, tuple(entries) if cursor is not None else ()))
        return JointDiscipline(subject, day, chosen, tuple(regions))
