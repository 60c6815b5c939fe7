"""Batch checks (信用互查互认): an agency officer checks many subjects at once.

A job is stored before any node is asked: its list in chunks, and, per chunk and region,
the node's answer as it came (the serialised ``CheckSubjectsResponse``), all kept by the
:class:`~gateway.batch.store.JobStore`, which holds the room's SQL. A runner asks each
region for the chunks it has not answered yet, with a bounded number of calls in flight
per region; a chunk's answer is written with one insert keyed by (job, chunk, region), so
a job interrupted by a restart resumes where it stopped, and nothing is checked twice
into the result. Reading the result streams chunk by chunk, so memory does not grow with
the batch: the statistics table (协助核查情况统计表) as CSV or XLSX, and a signed summary.

An entry is one element of the list as given (an element of the JSON array or of the gRPC
field, the first cell of an uploaded CSV row), and it stays one entry everywhere: a chunk
is stored as a JSON array, so an entry holding a line break is never split into two. The
gateway itself refuses an entry holding a control character or a line break (the nodes
see only its escaped form, and their answer for it is not used), and the table shows it
escaped. Every text cell of the table is written
so that a spreadsheet cannot take it for a formula (see :func:`table_text`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
from gateway.batch.store import Answer, JobStore, StoredJob
from gateway.batch.store import inputs as inputs  # the tables, where tests and tools have reached them
from gateway.batch.store import jobs as jobs
from gateway.batch.store import results as results
from gateway.reports.service import ReportService

log = structlog.get_logger("jjj.gateway")

MAX_SUBJECTS = 1_000_000
CHUNK = 5_000
IN_FLIGHT = 2  # calls per region at a time
CALL_TIMEOUT = 30.0
RETRY_PAUSE = 2.0


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
    """One subject's line of the statistics table."""

    subject: str
    kind: str = ""
    rejected: str = ""
    regions: dict[str, list[tuple[str, str, int]] | None] = field(default_factory=dict)  # None: unavailable


def parse_subject_list(data: bytes) -> list[str]:
    """Subject identifiers from an uploaded list: CSV (first column, an optional header
    row) or plain lines, UTF-8 with or without a BOM, or GBK as exported by older tools.
    Rows end at CR, LF or CRLF, as CSV has it; a quoted cell holding a line break, or a
    line holding U+2028, U+2029 or NEL, is one entry (which the gateway then refuses).

    Raises:
        InvalidInput: an empty list, or one that cannot be read.
        BatchTooLarge: more than a million subjects.
    """
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidInput.for_field("file", "名单无法读取：请使用 UTF-8 编码 (the list is not UTF-8 text)")
    subjects = []
    try:
        # newline="": the csv module, not the text layer, decides where a row ends, so a
        # file with bare CR line ends reads and a quoted line break stays in its cell.
        for number, row in enumerate(csv.reader(io.StringIO(text, newline=""))):
            if not row or not row[0].strip():
                continue
            value = row[0].strip()
            if number == 0 and not any(ch.isdigit() for ch in value):
                continue  # a header such as 统一社会信用代码
            subjects.append(value)
    except csv.Error as exc:
        raise InvalidInput.for_field("file", f"名单不是有效的 CSV (the list is not valid CSV: {exc})") from None
    return check_size(subjects)


def check_size(subjects: Sequence[str]) -> list[str]:
    """The list, if it is neither empty nor larger than a batch takes, each entry trimmed
    of surrounding whitespace. Entries are counted as given: one element, one entry, the
    same count as the job's total, the table's rows and the summary's subjects.

    Raises:
        InvalidInput: an empty list or an identifier longer than 64 characters.
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
    return [value.strip() for value in subjects]


# Unicode Cc (C0, DEL, C1) and the line and paragraph separators: never valid in an
# identifier, illegal in XLSX (C0 but tab and line ends) or read as a line end.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # where str.splitlines() breaks


def refusal(entry: str) -> str:
    """Why the gateway refuses an entry before any node is asked, or "" when it does not:
    an identifier holds no control character, and an entry holding a line break is one
    invalid entry, not two identifiers."""
    if _CONTROL.search(entry) is None:
        return ""
    if any(ch in _LINE_BREAKS for ch in entry):
        return "条目含换行符，每个条目只能是一个主体代码 (the entry holds a line break: one identifier per entry)"
    return "条目含控制字符 (the entry holds a control character)"


def escaped(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x07``, ``\\u2028``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class BatchService:
    """Batch jobs: submitted, run against every region, read back as table rows. Its jobs
    are kept by ``store``, by default a :class:`JobStore` on the report service's registry."""

    def __init__(
        self,
        reports: ReportService,
        clients: Mapping[Region, NodeClient],
        *,
        store: JobStore | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self.reports = reports
        self.store = store if store is not None else JobStore(reports.registry)
        self.clients = clients
        self.chunk = chunk
        self._runners: dict[str, asyncio.Task[None]] = {}

    # Submitting

    def _may_batch(self, principal: Principal) -> None:
        policy.require_batch(principal)

    async def submit(
        self, principal: Principal, subjects: Sequence[str], *, purpose: str, years: int = 0, profile_id: str = ""
    ) -> JobStatus:
        """Store a job and start checking it.

        Raises:
            PermissionDenied: not an agency officer (or admin).
            InvalidInput: no purpose, an empty list, bad years or profile.
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
        profile = get_profile(profile_id or self.reports.default_profile)
        if years and years not in profile.window_years:
            raise InvalidInput.for_field("years", f"可选 {profile.window_years} 年 (one of {profile.window_years})")
        years = years or profile.default_years
        job_id = "b_" + secrets.token_hex(8)
        chunks = [subjects[i : i + self.chunk] for i in range(0, len(subjects), self.chunk)]
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
        await self.store.create(job, chunks)
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
        """Start the job's runner in the background, unless one is running already.

        Raises:
            RuntimeError: no event loop is running.
        """
        if job_id not in self._runners or self._runners[job_id].done():
            self._runners[job_id] = asyncio.create_task(self._run(job_id))

    async def resume_all(self) -> list[str]:
        """Start the runner of every job a previous process left unfinished; their ids.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        unfinished = await self.store.unfinished()
        for job_id in unfinished:
            log.info("batch_resumed", job_id=job_id)
            self.start(job_id)
        return unfinished

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
        escaped form, a placeholder that keeps the answers in step with the entries (its
        answer is not used)."""
        return [escaped(entry) if refusal(entry) else entry for entry in await self.store.chunk(job_id, chunk_no)]

    async def _run(self, job_id: str) -> None:
        job = await self.store.job(job_id)
        if job is None:
            return
        options = QueryOptions(profile=job.profile, years=job.years)
        try:
            await asyncio.gather(*(self._run_region(job, region, options) for region in self.clients))
        except asyncio.CancelledError:
            log.info("batch_paused", job_id=job_id)
            raise
        await self.store.finish(job_id, datetime.now(UTC))
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

    async def _run_region(self, job: StoredJob, region: Region, options: QueryOptions) -> None:
        client = self.clients[region]
        missing = await self.store.missing(job.job_id, region)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for chunk_no in missing:
            queue.put_nowait(chunk_no)

        async def worker() -> None:
            while not queue.empty():
                chunk_no = queue.get_nowait()
                subjects = await self._chunk(job.job_id, chunk_no)
                answer = await self._ask(client, subjects, job, options)
                await self.store.add_answer(job.job_id, chunk_no, region, answer)  # False: answered already, kept

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
        job = await self.store.job(job_id)
        if job is None or not policy.sees_job(principal, job.created_by):
            raise NotFound(f"没有编号为 {job_id} 的核查任务 (no batch job {job_id} of yours)")
        done = await self.store.answered(job_id)
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
        )

    def rows(self, job_id: str) -> Iterator[Row]:
        """Every subject's line, in the order submitted, a chunk at a time: synchronous,
        for worker threads (each chunk is read from the database as the iteration
        reaches it).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        regions = [region.value for region in self.clients]
        not_yet = Answer(b"", "未完成 (not checked yet)")
        for chunk in self.store.chunks(job_id):
            decoded: dict[str, list[CheckLine] | None] = {}
            for region in regions:
                answer = chunk.answers.get(region, not_yet)
                decoded[region] = None if answer.failure or not answer.payload else wire.check_lines(answer.payload)
            for i, subject in enumerate(chunk.entries):
                reason = refusal(subject)
                if reason:
                    yield Row(subject, rejected=reason)
                    continue
                row = Row(subject)
                for region in regions:
                    checks = decoded[region]
                    if checks is None:
                        row.regions[region] = None
                        continue
                    line = checks[i]
                    if line.rejected:
                        row.rejected = line.rejected
                    row.kind = row.kind or line.kind or ""
                    row.regions[region] = [(domain, scope.value, count) for domain, scope, count in line.hits]
                yield row
