"""Where batch jobs are kept: the job (``batch_jobs``), its list in chunks
(``batch_inputs``) and, per chunk and region, the node's answer as it came
(``batch_results``), in the gateway's database.

All of the batch room's SQL is here. From the event loop, reads go through
:meth:`gateway.registry.Registry.read` and writes through the registry's group commit
(:attr:`gateway.registry.Registry.writes`), so a job's answers share commits with the
reports and the audit log written at the same time. Reading a finished job's table is
synchronous (:meth:`JobStore.chunks`): its callers run it on worker threads, a chunk at a
time, so memory does not grow with the batch.

A chunk is stored as a JSON array of its entries, so an entry holding a line break stays
one entry. Chunks of jobs stored before that hold their entries joined by newlines, and
read that way, so such a job still resumes and its table still reads. Beside its entries a
chunk keeps the names the list gave (a JSON array, or NULL for a list without names) and
which of its entries repeat an earlier row of the list (a JSON object from the entry's
offset in the chunk to the 序号 of the row it repeats, NULL when none does): both are
worked out over the whole list when the job is submitted, so reading the table back
needs no memory of the rows before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from credit.errors import NotFound
from credit.regions import Region
from gateway.models import BatchInputRow, BatchJobRow, BatchResultRow
from gateway.registry import Registry
from infra.db import as_utc

jobs: Table = BatchJobRow.__table__  # type: ignore[assignment]
inputs: Table = BatchInputRow.__table__  # type: ignore[assignment]
results: Table = BatchResultRow.__table__  # type: ignore[assignment]

# Statements built once (SQLAlchemy caches their compiled form).
_JOB = select(jobs).where(jobs.c.job_id == bindparam("job_id"))
_RUNNING = select(jobs.c.job_id).where(jobs.c.status == "running").order_by(jobs.c.created_at, jobs.c.job_id)
_CHUNK = select(inputs.c.subjects, inputs.c.names, inputs.c.duplicate_of).where(
    inputs.c.job_id == bindparam("job_id"), inputs.c.chunk_no == bindparam("no")
)
_ANSWERS = select(results.c.region, results.c.answer, results.c.failure).where(
    results.c.job_id == bindparam("job_id"), results.c.chunk_no == bindparam("no")
)
_MISSING = (
    select(inputs.c.chunk_no)
    .where(
        inputs.c.job_id == bindparam("job_id"),
        inputs.c.chunk_no.not_in(
            select(results.c.chunk_no).where(
                results.c.job_id == bindparam("job_id"), results.c.region == bindparam("region")
            )
        ),
    )
    .order_by(inputs.c.chunk_no)
)
_BY_CREATOR = (
    select(jobs)
    .where(jobs.c.created_by == bindparam("created_by"))
    .order_by(jobs.c.created_at.desc(), jobs.c.job_id.desc())
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_ANSWERED = (
    select(results.c.region, func.count()).where(results.c.job_id == bindparam("job_id")).group_by(results.c.region)
)


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job as stored: who asked, why, under which profile, and how far it got."""

    job_id: str
    created_by: str
    role: str
    purpose: str
    profile: str
    years: int
    total: int  # entries in the list
    chunks: int
    status: str  # running / done
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] | None = None  # the table's counts, kept when the job is done


@dataclass(frozen=True, slots=True)
class Answer:
    """A region's answer for one chunk: the node's serialised ``CheckSubjectsResponse``,
    or empty with why the region could not answer."""

    payload: bytes
    failure: str


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk's entries as submitted, the list's names for them (None: the list had no
    name column), which entries repeat an earlier row (offset → that row's 序号), and
    the answers stored for it so far, by region."""

    chunk_no: int
    entries: list[str]
    answers: dict[str, Answer]
    names: list[str] | None = None
    duplicate_of: dict[int, int] = field(default_factory=dict)


def _chunk(chunk_no: int, row: Any, answers: dict[str, Answer]) -> StoredChunk:
    entries = entries_of(str(row.subjects))
    names = json.loads(row.names) if row.names else None
    repeats = {int(offset): int(number) for offset, number in json.loads(row.duplicate_of or "{}").items()}
    return StoredChunk(chunk_no, entries, answers, names, repeats)


def stored_text(entries: Sequence[str]) -> str:
    """A chunk as it is stored: a JSON array of its entries."""
    return json.dumps(list(entries), ensure_ascii=False)


def entries_of(text: str) -> list[str]:
    """A stored chunk's entries: a JSON array of strings, or, for chunks stored before
    chunks were JSON arrays, the entries joined by newlines."""
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(entries, list) and all(isinstance(entry, str) for entry in entries):
                return entries
    return text.split("\n")


def _job(row: Any) -> StoredJob:
    data = dict(row)
    data["created_at"] = as_utc(data["created_at"])
    data["finished_at"] = as_utc(data["finished_at"])
    data["counts"] = json.loads(data["counts"]) if data["counts"] else None
    return StoredJob(**data)


class JobStore:
    """The batch jobs in the gateway's database, through its :class:`Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = registry.engine

    # Writing

    async def create(
        self,
        job: StoredJob,
        chunks: Sequence[Sequence[str]],
        *,
        names: Sequence[Sequence[str]] | None = None,
        duplicate_of: Sequence[Mapping[int, int]] | None = None,
    ) -> None:
        """Store a job and its list, a chunk per row, in one transaction; returns once
        committed. ``job.chunks`` is expected to be ``len(chunks)``; ``names`` and
        ``duplicate_of``, when given, hold a chunk's names and repeats per chunk.

        Raises:
            sqlalchemy.exc.IntegrityError: a job with this id is stored already.
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        values = {f.name: getattr(job, f.name) for f in fields(job)}
        values["counts"] = json.dumps(job.counts) if job.counts is not None else None
        rows = [
            {
                "job_id": job.job_id,
                "chunk_no": n,
                "subjects": stored_text(chunk),
                "names": stored_text(names[n]) if names is not None else None,
                "duplicate_of": json.dumps(duplicate_of[n]) if duplicate_of is not None and duplicate_of[n] else None,
            }
            for n, chunk in enumerate(chunks)
        ]

        def write(conn: Connection) -> None:
            conn.execute(insert(jobs), values)
            if rows:
                conn.execute(insert(inputs), rows)

        await self.registry.writes.submit(write)

    async def add_answer(self, job_id: str, chunk_no: int, region: Region, answer: Answer) -> bool:
        """Store a region's answer for a chunk, once: True when stored, False when the
        chunk had an answer from that region already (a runner from before a restart got
        there first), which is kept.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        values = {
            "job_id": job_id,
            "chunk_no": chunk_no,
            "region": region.value,
            "answer": answer.payload,
            "failure": answer.failure,
        }

        def write(conn: Connection) -> None:
            conn.execute(insert(results), values)

        try:
            await self.registry.writes.submit(write)
        except IntegrityError:
            # The group commit runs an operation on its own once its group failed on an
            # integrity error, so this one is this insert's: the key is taken.
            return False
        return True

    async def finish(self, job_id: str, finished_at: datetime, counts: Mapping[str, int] | None = None) -> bool:
        """Mark a running job done at ``finished_at``, with its table's ``counts``; returns
        once committed: True, or False when the job was done already (another process
        finished it).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        kept = json.dumps(dict(counts)) if counts is not None else None
        statement = (
            update(jobs)
            .where(jobs.c.job_id == job_id, jobs.c.status == "running")
            .values(status="done", finished_at=finished_at, counts=kept)
        )

        def write(conn: Connection) -> int:
            return int(conn.execute(statement).rowcount or 0)

        return bool(await self.registry.writes.submit(write))

    # Reading, from the event loop

    async def job(self, job_id: str) -> StoredJob | None:
        """The job stored under ``job_id``, or None.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: StoredJob | None = await self.registry.read(self._read_job, job_id)
        return found

    def _read_job(self, job_id: str) -> StoredJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(_JOB, {"job_id": job_id}).mappings().first()
        return None if row is None else _job(row)

    async def keep_counts(self, job_id: str, counts: Mapping[str, int]) -> None:
        """Keep the table's counts of a job done before they were kept when it finished.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        statement = (
            update(jobs).where(jobs.c.job_id == job_id, jobs.c.counts.is_(None)).values(counts=json.dumps(dict(counts)))
        )

        def write(conn: Connection) -> None:
            conn.execute(statement)

        await self.registry.writes.submit(write)

    async def by_creator(self, created_by: str, *, offset: int, limit: int) -> list[StoredJob]:
        """The jobs ``created_by`` submitted, newest first, ``limit`` of them from ``offset``.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: list[StoredJob] = await self.registry.read(self._read_by_creator, created_by, offset, limit)
        return found

    def _read_by_creator(self, created_by: str, offset: int, limit: int) -> list[StoredJob]:
        with self.engine.connect() as conn:
            found = conn.execute(_BY_CREATOR, {"created_by": created_by, "offset": offset, "limit": limit})
            return [_job(row) for row in found.mappings()]

    async def unfinished(self) -> list[str]:
        """The ids of the jobs still running, oldest first.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: list[str] = await self.registry.read(self._read_unfinished)
        return found

    def _read_unfinished(self) -> list[str]:
        with self.engine.connect() as conn:
            return [str(job_id) for job_id in conn.execute(_RUNNING).scalars()]

    async def missing(self, job_id: str, region: Region) -> list[int]:
        """The numbers of the job's chunks ``region`` has not answered yet, in order.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: list[int] = await self.registry.read(self._read_missing, job_id, region.value)
        return found

    def _read_missing(self, job_id: str, region: str) -> list[int]:
        with self.engine.connect() as conn:
            return [int(n) for n in conn.execute(_MISSING, {"job_id": job_id, "region": region}).scalars()]

    async def chunk(self, job_id: str, chunk_no: int) -> StoredChunk:
        """A chunk as submitted (without its answers).

        Raises:
            NotFound: the job has no such chunk.
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: StoredChunk | None = await self.registry.read(self._read_chunk, job_id, chunk_no)
        if found is None:
            raise NotFound(f"核查任务 {job_id} 没有第 {chunk_no} 段 (batch job {job_id} has no chunk {chunk_no})")
        return found

    def _read_chunk(self, job_id: str, chunk_no: int) -> StoredChunk | None:
        with self.engine.connect() as conn:
            row = conn.execute(_CHUNK, {"job_id": job_id, "no": chunk_no}).first()
        return None if row is None else _chunk(chunk_no, row, {})

    async def answered(self, job_id: str) -> dict[str, int]:
        """How many of the job's chunks each region has answered (regions with none are
        left out).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        found: dict[str, int] = await self.registry.read(self._read_answered, job_id)
        return found

    def _read_answered(self, job_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {str(region): int(n) for region, n in conn.execute(_ANSWERED, {"job_id": job_id}).all()}

    # Reading, on a worker thread

    def chunks(self, job_id: str, *, first: int = 0) -> Iterator[StoredChunk]:
        """The job's chunks in order from chunk ``first``, each with the answers stored for
        it: synchronous, for worker threads. Each chunk is read when it is asked for, on a
        connection of its own given back before it is yielded, so a slow reader holds
        neither memory nor a connection; a job that does not exist has no chunks.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        chunk_no = first
        while True:
            with self.engine.connect() as conn:
                stored = conn.execute(_CHUNK, {"job_id": job_id, "no": chunk_no}).first()
                answers = {
                    str(row.region): Answer(bytes(row.answer), str(row.failure))
                    for row in conn.execute(_ANSWERS, {"job_id": job_id, "no": chunk_no})
                }
            if stored is None:
                return
            yield _chunk(chunk_no, stored, answers)
            chunk_no += 1
