"""Batch checks (信用互查互认): an agency officer checks many subjects at once.

A job is stored before any node is asked: its list in chunks, and, per chunk and region,
the node's answer as it came (the serialised ``CheckSubjectsResponse``), all kept by the
:class:`~gateway.batch.store.JobStore`, which holds the room's SQL. A runner asks each
region for the chunks it has not answered yet, with a bounded number of calls in flight
per region; a chunk's answer is written with one insert keyed by (job, chunk, region), so
a job interrupted by a restart resumes where it stopped, and nothing is checked twice
into the result. A job runs in one process at a time, the holder of its lease
(:mod:`infra.leases`, ``batch:<job id>``): every process of the instance looks for
unfinished jobs nobody holds (:meth:`BatchService.adopt`), so the job of a process that
stopped or died is finished by another. Reading the result streams chunk by chunk, so memory does not grow with
the batch: the statistics table (协助核查情况统计表) as CSV or XLSX, and a signed summary.

An entry is one element of the list as given (an element of the JSON array or of the gRPC
field, the code cell of an uploaded row, see :mod:`gateway.batch.lists`), and it stays one
row of the table everywhere, in the order given: a blank entry is a row (空行), and an
entry repeating an earlier one is a row that says so, its subject checked once. A chunk
is stored as a JSON array, so an entry holding a line break is never split into two. The
gateway itself refuses an entry holding a control character or a line break (the nodes
see only its escaped form, and their answer for it is not used), and the table shows it
escaped. Every text cell of the table is written
so that a spreadsheet cannot take it for a formula (see :func:`table_text`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import structlog

from credit import policy
from credit.audit import Action, Event
from credit.clock import iso_z
from credit.errors import BatchTooLarge, CreditError, InvalidInput, NotFound
from credit.policy import Principal
from credit.profiles import get_profile
from credit.queries import MAX_PURPOSE, CheckLine, QueryOptions
from credit.regions import Region
from federation import wire
from federation.assertions import BATCH, on_behalf_of
from federation.client import NodeClient, NodeUnavailable, status_text
from gateway.batch.lists import SubjectList, read_list
from gateway.batch.store import Answer, JobStore, StoredChunk, StoredJob
from gateway.batch.store import inputs as inputs  # the tables, where tests and tools have reached them
from gateway.batch.store import jobs as jobs
from gateway.batch.store import results as results
from gateway.reports.service import ReportService
from infra.leases import LeaseLost, Leases

log = structlog.get_logger("jjj.gateway")

MAX_SUBJECTS = 1_000_000
CHUNK = 5_000
IN_FLIGHT = 2  # calls per region at a time
CALL_TIMEOUT = 30.0
RETRY_PAUSE = 2.0
LEASE_SECONDS = 30.0  # a job's lease: a runner that died is replaced within about this long


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    purpose: str
    created_by: str
    status: str  # running / done / failed
    total: int
    chunks: int
    done: dict[str, int]  # chunks answered per region
    created_at: datetime
    finished_at: datetime | None
    profile: str
    years: int
    counts: dict[str, int] | None = None  # the table's counts, kept once the job is done

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "purpose": self.purpose,
            "created_by": self.created_by,
            "status": self.status,
            "total": self.total,
            "progress": {
                region: {"chunks_done": n, "chunks": self.chunks, "subjects_done": min(self.total, n * CHUNK)}
                for region, n in self.done.items()
            },
            "created_at": iso_z(self.created_at),
            "finished_at": iso_z(self.finished_at) if self.finished_at else None,
            "profile": self.profile,
            "years": self.years,
        }


@dataclass
class Row:
    """One row of the list, as a line of the statistics table: its 序号 and entry, the
    name the list gave beside it, and either why it was not checked (a blank row, a repeat
    of an earlier row, an invalid identifier) or what each region found."""

    subject: str
    kind: str = ""
    rejected: str = ""
    regions: dict[str, list[tuple[str, str, int]] | None] = field(default_factory=dict)  # None: unavailable
    number: int = 0  # 序号: the row's place in the list, from 1
    name: str = ""  # 名单所列名称
    duplicate_of: int = 0  # the 序号 of the earlier row this one repeats
    empty: bool = False  # 空行

    @property
    def outcome(self) -> str:
        """How the row counts in the summary: empty, duplicate, rejected, with_records,
        incomplete or clear (each row exactly one of them)."""
        if self.empty:
            return "empty"
        if self.duplicate_of:
            return "duplicate"
        if self.rejected:
            return "rejected"
        if any(hits for hits in self.regions.values() if hits):
            return "with_records"
        return "incomplete" if any(hits is None for hits in self.regions.values()) else "clear"


COUNTS = ("rejected", "with_records", "clear", "incomplete", "duplicates", "empty")
_COUNTED = {"empty": "empty", "duplicate": "duplicates"}


def no_counts() -> dict[str, int]:
    """The table's counts before any row: ``subjects`` (every row of the list) and each
    kind of row in :data:`COUNTS`; the kinds add up to ``subjects``."""
    return dict.fromkeys(("subjects", *COUNTS), 0)


def add_row(counts: dict[str, int], row: Row) -> None:
    """Count ``row`` into ``counts`` (see :func:`no_counts`)."""
    counts["subjects"] += 1
    outcome = row.outcome
    counts[_COUNTED.get(outcome, outcome)] += 1


def count_rows(rows: Iterable[Row]) -> dict[str, int]:
    """The counts of a table's rows (see :func:`no_counts`)."""
    counts = no_counts()
    for row in rows:
        add_row(counts, row)
    return counts


def parse_subject_list(data: bytes) -> SubjectList:
    """An uploaded list (see :mod:`gateway.batch.lists`), if a batch takes it.

    Raises:
        InvalidInput: a file the gateway does not read, an empty list, an identifier
            longer than 64 characters or a name longer than the limit.
        BatchTooLarge: more than a million rows.
    """
    listed = read_list(data)
    check_size(listed.entries)
    return listed


def check_size(subjects: Sequence[str]) -> list[str]:
    """The list, if it is neither empty nor larger than a batch takes, each entry trimmed
    of surrounding whitespace. Entries are counted as given: one element, one entry, the
    same count as the job's total, the table's rows and the summary's subjects; a blank
    entry is a row of the list too (the table shows it as 空行).

    Raises:
        InvalidInput: a list with no identifier in it, or an identifier longer than 64
            characters.
        BatchTooLarge: more than a million subjects.
    """
    if not subjects:
        raise InvalidInput.for_field("subjects", "名单为空 (no subjects given)")
    if len(subjects) > MAX_SUBJECTS:
        raise BatchTooLarge.for_field(
            "subjects", f"单次最多 {MAX_SUBJECTS:,} 个主体 (at most {MAX_SUBJECTS:,} subjects, got {len(subjects):,})"
        )
    for value in subjects:
        if not isinstance(value, str) or len(value) > 64:
            raise InvalidInput.for_field("subjects", "每个主体代码应为不超过 64 个字符的文本 (identifiers are strings)")
    trimmed = [value.strip() for value in subjects]
    if not any(trimmed):
        raise InvalidInput.for_field("subjects", "名单为空 (no subjects given)")
    return trimmed


def repeats(entries: Sequence[str]) -> dict[int, int]:
    """Which entries repeat an earlier one: index → the 序号 (1-based) of the first row
    with the same identifier. Identifiers compare as the nodes read them (trimmed, upper
    case); blank entries and entries the gateway refuses repeat nothing."""
    count = len(entries)
    if not count:
        return {}
    keys: list[object]
    if not _any_control(entries):
        # No entry is refused, and none holds a NUL: the keys in a few C calls for them all.
        keys = list(map(str.strip, "\x00".join(entries).upper().split("\x00")))
    else:
        keys = [(index,) if refusal(entry) else entry.upper().strip() for index, entry in enumerate(entries)]
    if "" in entries:
        for index, entry in enumerate(entries):
            if not entry:
                keys[index] = (index,)  # a blank entry repeats nothing, and nothing repeats it
    # Each row's first row with its key, in one pass: setdefault keeps the first row it
    # was given for a key and answers it for every later one (building the map, then
    # looking every key up again, cost a quarter more).
    first: dict[object, int] = {}
    firsts = np.fromiter(map(first.setdefault, keys, range(1, count + 1)), dtype=np.int64, count=count)
    return {int(index): int(firsts[index]) for index in np.flatnonzero(firsts != np.arange(1, count + 1))}


# Unicode Cc (C0, DEL, C1) and the line and paragraph separators: never valid in an
# identifier, illegal in XLSX (C0 but tab and line ends) or read as a line end.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # where str.splitlines() breaks


_ASCII_CONTROL = bytes([*range(0x20), 0x7F])


def _any_control(entries: Sequence[str]) -> bool:
    """Whether any entry holds a control character. Lists are ASCII as a rule, and then
    deleting the control bytes in one C call tells, where the regular expression steps
    character by character."""
    joined = "".join(entries)
    if joined.isascii():
        data = joined.encode("ascii")
        return len(data.translate(None, _ASCII_CONTROL)) != len(data)
    return _CONTROL.search(joined) is not None


def refusal(entry: str) -> str:
    """Why the gateway refuses an entry before any node is asked, or "" when it does not:
    an identifier holds no control character, and an entry holding a line break is one
    invalid entry, not two identifiers."""
    if _CONTROL.search(entry) is None:
        return ""
    if any(ch in _LINE_BREAKS for ch in entry):
        return "条目含换行符，每个条目只能是一个主体代码 (the entry holds a line break: one identifier per entry)"
    return "条目含控制字符 (the entry holds a control character)"


def asked(entries: Sequence[str], duplicate_of: Mapping[int, int]) -> list[str]:
    """A chunk's entries as the nodes are asked about them (see :meth:`BatchService._chunk`)."""
    if not _any_control(entries):
        asking = list(entries)  # the common chunk: no entry refused, looked at once
    else:
        asking = [escaped(entry) if refusal(entry) else entry for entry in entries]
    for index in duplicate_of:
        asking[index] = ""
    return asking


def escaped(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x07``, ``\\u2028``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class BatchService:
    """Batch jobs: submitted, run against every region, read back as table rows. Its jobs
    are kept by ``store``, by default a :class:`JobStore` on the report service's registry;
    a job runs under a lease of ``lease_seconds`` taken from ``leases`` (by default this
    service's own, on the registry's database)."""

    def __init__(
        self,
        reports: ReportService,
        clients: Mapping[Region, NodeClient],
        *,
        store: JobStore | None = None,
        chunk: int = CHUNK,
        leases: Leases | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.reports = reports
        self.store = store if store is not None else JobStore(reports.registry)
        self.clients = clients
        self.chunk = chunk
        self.leases = leases if leases is not None else Leases(self.store.engine, run=reports.registry.run)
        self.lease_seconds = lease_seconds
        self._runners: dict[str, asyncio.Task[None]] = {}
        # The jobs running in this process, each with its chunks answered per region.
        self._live: dict[str, tuple[StoredJob, dict[str, int]]] = {}

    # Submitting

    def _may_batch(self, principal: Principal) -> None:
        policy.require_batch(principal)

    async def submit(
        self,
        principal: Principal,
        subjects: Sequence[str],
        *,
        purpose: str,
        years: int = 0,
        profile_id: str = "",
        names: Sequence[str] | None = None,
    ) -> JobStatus:
        """Store a job and start checking it: every entry of ``subjects`` a row of its
        table, with the name ``names`` gives beside it (when the list had a name column);
        a row repeating an earlier one is marked so and checked once.

        Raises:
            PermissionDenied: not an agency officer (or admin).
            InvalidInput: no purpose, an empty list, bad years or profile, or ``names``
                not one per entry.
            BatchTooLarge: more than a million subjects.
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        self._may_batch(principal)
        purpose = purpose.strip()
        if not purpose or len(purpose) > MAX_PURPOSE:
            raise InvalidInput.for_field(
                "purpose", f"请填写核查事由 (state the purpose, at most {MAX_PURPOSE} characters)"
            )
        subjects = check_size(subjects)
        if names is not None and len(names) != len(subjects):
            raise InvalidInput.for_field("names", "名称应与主体代码一一对应 (one name per subject)")
        profile = get_profile(profile_id or self.reports.default_profile)
        if years and years not in profile.window_years:
            raise InvalidInput.for_field("years", f"可选 {profile.window_years} 年 (one of {profile.window_years})")
        years = years or profile.default_years
        job_id = "b_" + secrets.token_hex(8)
        starts = range(0, len(subjects), self.chunk)
        chunks = [subjects[i : i + self.chunk] for i in starts]
        duplicate_of: list[dict[int, int]] = [{} for _ in starts]
        for n, first in repeats(subjects).items():
            duplicate_of[n // self.chunk][n % self.chunk] = first
        job = StoredJob(
            job_id=job_id,
            created_by=principal.username,
            role=principal.role.value,
            purpose=purpose,
            profile=profile.id,
            years=years,
            total=len(subjects),
            chunks=len(chunks),
            status="running",
            created_at=datetime.now(UTC),
            finished_at=None,
        )
        await self.store.create(
            job,
            chunks,
            names=None if names is None else [list(names[i : i + self.chunk]) for i in starts],
            duplicate_of=duplicate_of,
        )
        await self.reports.audit.record(
            Event(
                principal.username,
                principal.role.value,
                Action.BATCH_CHECK,
                purpose=purpose,
                detail=f"{job_id} submitted: {len(subjects)} subjects",
            )
        )
        self.start(job_id)
        return await self.status(principal, job_id)

    # Running

    def start(self, job_id: str) -> None:
        """Start the job's runner in the background, unless one is running in this process
        already. The runner runs the job if it can take the job's lease, and ends at once
        when another process holds it.

        Raises:
            RuntimeError: no event loop is running.
        """
        if not self.running_here(job_id):
            self._runners[job_id] = asyncio.create_task(self._run_leased(job_id))

    def running_here(self, job_id: str) -> bool:
        """Whether a runner of the job is running in this process (it may still be about
        to find the job's lease held elsewhere)."""
        runner = self._runners.get(job_id)
        return runner is not None and not runner.done()

    async def resume_all(self) -> list[str]:
        """Start a runner for every unfinished job that has none in this process; their
        ids. Each runs the job only if no other process holds it.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        unfinished = [job_id for job_id in await self.store.unfinished() if not self.running_here(job_id)]
        for job_id in unfinished:
            self.start(job_id)
        return unfinished

    async def adopt(self, *, every: float | None = None) -> None:
        """Look for unfinished jobs nobody runs — left by a process that stopped or died —
        now and every ``every`` seconds (half a lease by default), and run them, until
        cancelled. A job whose runner died is so taken over within about a lease and a half.

        Raises nothing but asyncio.CancelledError: a failed look is logged and tried again.
        """
        pause = every if every is not None else self.lease_seconds / 2
        while True:
            try:
                await self.resume_all()
            except Exception:  # the database may be back at the next look
                log.exception("batch_adopt_failed")
            await asyncio.sleep(pause)

    async def stop(self) -> None:
        """Cancel every runner and wait until they have stopped; their jobs stay unfinished
        and resume in the next process. Raises nothing: a runner's error ends with it."""
        for task in self._runners.values():
            task.cancel()
        await asyncio.gather(*self._runners.values(), return_exceptions=True)

    async def wait(self, job_id: str) -> None:
        """Wait until the job's runner in this process ends (at once when there is none).

        Raises:
            asyncio.CancelledError: the runner was cancelled (the service stopped).
            Whatever ended the runner: the database could not be read or written.
        """
        task = self._runners.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    async def _chunk(self, job_id: str, chunk_no: int) -> list[str]:
        """A chunk's entries as the nodes are asked about them: a refused entry goes in its
        escaped form and a repeat of an earlier row as a blank, placeholders that keep the
        answers in step with the entries (their answers are not used; a node answers a
        blank as invalid without looking anything up, so a repeated subject is checked once)."""
        chunk = await self.store.chunk(job_id, chunk_no)
        return asked(chunk.entries, chunk.duplicate_of)

    async def _run_leased(self, job_id: str) -> None:
        try:
            ran = await self.leases.hold(f"batch:{job_id}", lambda: self._run(job_id), seconds=self.lease_seconds)
        except LeaseLost as lost:
            # This process stalled or lost its database for a lease's length: another one
            # has the job now (answers written by both are kept once).
            log.warning("batch_lease_lost", job_id=job_id, reason=lost.reason)
            return
        if not ran:
            log.debug("batch_run_elsewhere", job_id=job_id)

    async def _run(self, job_id: str) -> None:
        job = await self.store.job(job_id)
        if job is None or job.status != "running":
            return  # finished by another process between the look and the lease
        log.info("batch_running", job_id=job_id, holder=self.leases.holder)
        options = QueryOptions(profile=job.profile, years=job.years)
        missing = {region: await self.store.missing(job_id, region) for region in self.clients}
        chunks = _SharedChunks(
            lambda chunk_no: self._chunk(job_id, chunk_no), Counter(n for todo in missing.values() for n in todo)
        )
        # While the job runs here, its progress is counted here too: a poll of its status
        # then reads no table (see status()).
        self._live[job_id] = (job, {region.value: job.chunks - len(missing[region]) for region in self.clients})
        try:
            try:
                await asyncio.gather(
                    *(self._run_region(job, region, options, missing[region], chunks) for region in self.clients)
                )
            except asyncio.CancelledError:
                log.info("batch_paused", job_id=job_id)
                raise
            # The counts are kept with the job, so the officer's list of jobs shows them unread.
            counts = await asyncio.to_thread(self.counts, job_id)
            finished = await self.store.finish(job_id, datetime.now(UTC), counts)
        finally:
            self._live.pop(job_id, None)
        if not finished:
            return  # another process finished it meanwhile, and said so in the audit log
        await self.reports.audit.record(
            Event(
                job.created_by,
                job.role,
                Action.BATCH_CHECK,
                purpose=job.purpose,
                detail=f"{job_id} done: {job.total} subjects",
            )
        )
        log.info("batch_done", job_id=job_id, subjects=job.total)

    async def _run_region(
        self, job: StoredJob, region: Region, options: QueryOptions, missing: list[int], chunks: _SharedChunks
    ) -> None:
        client = self.clients[region]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for chunk_no in missing:
            queue.put_nowait(chunk_no)

        async def worker() -> None:
            while not queue.empty():
                chunk_no = queue.get_nowait()
                subjects = await chunks.get(chunk_no)
                answer = await self._ask(client, subjects, job, options)
                await self.store.add_answer(job.job_id, chunk_no, region, answer)  # False: answered already, kept
                live = self._live.get(job.job_id)
                if live is not None:
                    live[1][region.value] += 1

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    async def _ask(self, client: NodeClient, subjects: list[str], job: StoredJob, options: QueryOptions) -> Answer:
        # A region that stays down is recorded as unavailable for the chunk after a few
        # tries: the job finishes, and its table says which subjects that region missed.
        last = ""
        for attempt in range(3):
            # Each try its own assertion: a node accepts an assertion once.
            assertion = on_behalf_of(
                self.reports.signing_key,
                issuer=self.reports.issuer,
                user=job.created_by,
                role=job.role,
                subject=BATCH,
                purpose=job.purpose,
                regions=[client.region],
            )
            try:
                answer = await client.check_subjects(
                    subjects, options, purpose=job.purpose, timeout=CALL_TIMEOUT, assertion=assertion
                )
                return Answer(answer.payload, "")
            except CreditError as error:
                last = status_text(error)
                if not (isinstance(error, NodeUnavailable) and error.transient):
                    break
                await asyncio.sleep(RETRY_PAUSE * (attempt + 1))
        return Answer(b"", f"该地区暂不可用 ({last})")

    # Reading

    async def status(self, principal: Principal, job_id: str) -> JobStatus:
        """A job's progress.

        Raises:
            NotFound: no such job of this officer.
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        live = self._live.get(job_id)
        job: StoredJob | None
        if live is not None:
            job, done = live[0], dict(live[1])
        else:
            found = await self.store.job(job_id)
            job, done = found, await self.store.answered(job_id) if found is not None else {}
        if job is None or not policy.sees_job(principal, job.created_by):
            raise NotFound(f"没有编号为 {job_id} 的核查任务 (no batch job {job_id} of yours)")
        return JobStatus(
            job.job_id,
            job.purpose,
            job.created_by,
            job.status,
            job.total,
            job.chunks,
            {region.value: done.get(region.value, 0) for region in self.clients},
            job.created_at,
            job.finished_at,
            job.profile,
            job.years,
            job.counts,
        )

    async def mine(self, principal: Principal, *, page: int, per_page: int) -> tuple[list[StoredJob], bool]:
        """The jobs ``principal`` submitted, newest first, the ``page``-th ``per_page`` of
        them, and whether there are more.

        Raises:
            PermissionDenied: not an agency officer (or admin).
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        self._may_batch(principal)
        found = await self.store.by_creator(principal.username, offset=(page - 1) * per_page, limit=per_page + 1)
        return found[:per_page], len(found) > per_page

    def rows(self, job_id: str, *, start: int = 0) -> Iterator[Row]:
        """Every row's line, in the order submitted, from the ``start``-th (0: the first),
        a chunk at a time: synchronous, for worker threads (each chunk is read from the
        database as the iteration reaches it; the chunks before ``start`` are not read,
        every chunk but the last being as long as the first).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        regions = [region.value for region in self.clients]
        size = 0
        if start:
            opening = next(self.store.chunks(job_id), None)
            size = len(opening.entries) if opening is not None else 0
        first = start // size if size else 0
        number = first * size  # the rows in the chunks skipped
        for chunk in self.store.chunks(job_id, first=first):
            decoded: dict[str, Sequence[CheckLine] | None] = {}
            for region in regions:
                answer = chunk.answers.get(region, _NOT_YET)
                decoded[region] = None if answer.failure or not answer.payload else wire.check_lines(answer.payload)
            for row in _chunk_rows(chunk, range(len(chunk.entries)), decoded, before=number):
                if row.number > start:
                    yield row
            number += len(chunk.entries)

    def counts(self, job_id: str) -> dict[str, int]:
        """The counts of the job's table (as :func:`count_rows` over :meth:`rows`), a
        chunk at a time: synchronous, for worker threads. Only the rows that are blank,
        repeated or refused are built; the others are counted from which regions
        rejected them or found records for them.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        regions = [region.value for region in self.clients]
        counts = no_counts()
        number = 0
        for chunk in self.store.chunks(job_id):
            entries = chunk.entries
            rejected: set[int] = set()
            hits: set[int] = set()
            complete = True  # every region answered
            matching = True
            for region in regions:
                answer = chunk.answers.get(region, _NOT_YET)
                if answer.failure or not answer.payload:
                    complete = False
                    continue
                refused, found, size = wire.flagged_lines(answer.payload)
                matching = matching and size == len(entries)
                rejected |= refused
                hits |= found
            if not matching:
                # An answer that does not match the chunk: count its rows one by one, as
                # the table reads them.
                for row in self.rows_of(chunk, regions, before=number):
                    add_row(counts, row)
                number += len(entries)
                continue
            special = set(chunk.duplicate_of)
            if "" in entries:
                special.update(i for i, entry in enumerate(entries) if not entry)
            if _any_control(entries):
                special.update(i for i, entry in enumerate(entries) if refusal(entry))
            for row in _chunk_rows(chunk, sorted(special), {}, before=number):
                add_row(counts, row)  # rows that no region's answer decides
            rejected -= special
            hits -= special | rejected
            rest = len(entries) - len(special) - len(rejected) - len(hits)
            counts["subjects"] += len(entries) - len(special)
            counts["rejected"] += len(rejected)
            counts["with_records"] += len(hits)
            counts["clear" if complete else "incomplete"] += rest
            number += len(entries)
        return counts

    def rows_of(self, chunk: StoredChunk, regions: Sequence[str], *, before: int) -> Iterator[Row]:
        """A chunk's rows, numbered after the ``before`` rows of the chunks before it.

        Raises:
            google.protobuf.message.DecodeError: a stored answer is not a batch answer.
        """
        decoded: dict[str, Sequence[CheckLine] | None] = {}
        for region in regions:
            answer = chunk.answers.get(region, _NOT_YET)
            decoded[region] = None if answer.failure or not answer.payload else wire.check_lines(answer.payload)
        return _chunk_rows(chunk, range(len(chunk.entries)), decoded, before=before)


_NOT_YET = Answer(b"", "未完成 (not checked yet)")


class _SharedChunks:
    """A running job's chunks as the nodes are asked about them, each read from the
    database once for all the regions that ask it (``readers``: how many will), and
    dropped when the last has it. When the regions drift far apart, chunks beyond
    :data:`_HELD_CHUNKS` held are read once per region instead, so memory stays bounded."""

    def __init__(self, load: Callable[[int], Awaitable[list[str]]], readers: Counter[int]) -> None:
        self._load = load
        self._readers = readers
        self._held: dict[int, asyncio.Future[list[str]]] = {}

    async def get(self, chunk_no: int) -> list[str]:
        held = self._held.get(chunk_no)
        self._readers[chunk_no] -= 1
        last = self._readers[chunk_no] <= 0
        if held is None:
            if last or len(self._held) >= _HELD_CHUNKS:
                return await self._load(chunk_no)
            held = self._held[chunk_no] = asyncio.ensure_future(self._load(chunk_no))
        elif last:
            del self._held[chunk_no]
        try:
            return list(await held)
        except BaseException:
            self._held.pop(chunk_no, None)
            raise


_HELD_CHUNKS = 32


def _chunk_rows(
    chunk: StoredChunk,
    indexes: Iterable[int],
    decoded: Mapping[str, Sequence[CheckLine] | None],
    *,
    before: int,
) -> Iterator[Row]:
    """The rows at ``indexes`` of a chunk, given each region's lines for it (None: the
    region did not answer), numbered after the ``before`` rows of the chunks before it."""
    entries = chunk.entries
    names = chunk.names if chunk.names is not None and len(chunk.names) == len(entries) else None
    for i in indexes:
        subject = entries[i]
        number = before + i + 1
        name = names[i] if names is not None else ""
        if i in chunk.duplicate_of:
            yield Row(subject, number=number, name=name, duplicate_of=chunk.duplicate_of[i])
            continue
        if not subject:
            # A row with a name and no code is a row missing its code; with neither, a blank row.
            missing = "未填写主体代码 (the row has no identifier)" if name else ""
            yield Row(subject, number=number, name=name, rejected=missing, empty=not name)
            continue
        reason = refusal(subject)
        if reason:
            yield Row(subject, rejected=reason, number=number, name=name)
            continue
        row = Row(subject, number=number, name=name)
        for region, checks in decoded.items():
            if checks is None:
                row.regions[region] = None
                continue
            line = checks[i]
            if line.rejected:
                row.rejected = line.rejected
            row.kind = row.kind or line.kind or ""
            row.regions[region] = [(domain, scope.value, count) for domain, scope, count in line.hits]
        yield row
