"""The batch job store on SQLite and PostgreSQL: a job and its chunks, answers stored once
per (job, chunk, region), the chunks a region still misses, and the counts of answered
chunks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from credit.errors import NotFound
from credit.regions import Region
from gateway.batch.store import Answer, JobStore, StoredJob, inputs
from gateway.registry import Registry


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))  # skipped, with why, when no server answers
    registry = await asyncio.to_thread(Registry.open, url)
    try:
        yield JobStore(registry)
    finally:
        await registry.writes.flush()
        await asyncio.to_thread(registry.close)


def a_job(job_id: str = "b_0123456789abcdef", *, chunks: int = 3, total: int = 7) -> StoredJob:
    return StoredJob(
        job_id=job_id,
        created_by="agency",
        role="agency",
        purpose="招标核查",
        profile="tianjin-2023",
        years=3,
        total=total,
        chunks=chunks,
        status="running",
        created_at=datetime(2025, 6, 16, 1, 2, 3, tzinfo=UTC),
        finished_at=None,
    )


LIST = [["91120000MA05K1AB2X", "A\nB", "=1+1"], ["91120000MA05K1AB3X", "C\u2028D", ""], ["甲"]]


async def test_a_job_is_stored_with_its_chunks_as_given(store: JobStore) -> None:
    job = a_job()
    await store.create(job, LIST)
    assert await store.job(job.job_id) == job
    assert await store.job("b_nothing") is None
    assert [(await store.chunk(job.job_id, n)).entries for n in range(3)] == LIST  # a line break stays in its entry
    with pytest.raises(NotFound):
        await store.chunk(job.job_id, 3)
    chunks = await asyncio.to_thread(lambda: list(store.chunks(job.job_id)))
    assert [(c.chunk_no, c.entries, c.answers) for c in chunks] == [(n, entries, {}) for n, entries in enumerate(LIST)]
    assert await asyncio.to_thread(lambda: list(store.chunks("b_nothing"))) == []


async def test_a_chunk_stored_the_old_way_reads_as_its_lines(store: JobStore) -> None:
    def store_the_old_way() -> None:
        with store.engine.begin() as conn:
            conn.execute(insert(inputs).values(job_id="b_old", chunk_no=0, subjects="91120000MA05K1AB2X\nnot-a-code"))

    await asyncio.to_thread(store_the_old_way)
    assert (await store.chunk("b_old", 0)).entries == ["91120000MA05K1AB2X", "not-a-code"]
    chunks = await asyncio.to_thread(lambda: list(store.chunks("b_old")))
    assert [c.entries for c in chunks] == [["91120000MA05K1AB2X", "not-a-code"]]


async def test_an_answer_is_stored_once_and_the_first_is_kept(store: JobStore) -> None:
    job = a_job()
    await store.create(job, LIST)
    first = Answer(b"\x01first", "")
    assert await store.add_answer(job.job_id, 1, Region.TIANJIN, first)
    assert not await store.add_answer(job.job_id, 1, Region.TIANJIN, Answer(b"", "该地区暂不可用 (later)"))
    # Answers arriving together share a commit; the one duplicate among them refuses only itself.
    stored = list(
        await asyncio.gather(
            store.add_answer(job.job_id, 0, Region.TIANJIN, Answer(b"t0", "")),
            store.add_answer(job.job_id, 1, Region.TIANJIN, Answer(b"again", "")),
            store.add_answer(job.job_id, 1, Region.BEIJING, Answer(b"", "该地区暂不可用 (down)")),
        )
    )
    assert stored == [True, False, True]
    chunks = await asyncio.to_thread(lambda: list(store.chunks(job.job_id)))
    assert chunks[0].answers == {"tianjin": Answer(b"t0", "")}
    assert chunks[1].answers == {"tianjin": first, "beijing": Answer(b"", "该地区暂不可用 (down)")}
    assert chunks[2].answers == {}


async def test_missing_chunks_and_counts_follow_the_answers(store: JobStore) -> None:
    job = a_job()
    await store.create(job, LIST)
    other = a_job("b_fedcba9876543210", chunks=1, total=1)
    await store.create(other, [["乙"]])
    await store.add_answer(other.job_id, 0, Region.TIANJIN, Answer(b"x", ""))  # another job's answer counts not here
    assert await store.missing(job.job_id, Region.TIANJIN) == [0, 1, 2]
    assert await store.answered(job.job_id) == {}
    await store.add_answer(job.job_id, 1, Region.TIANJIN, Answer(b"x", ""))
    await store.add_answer(job.job_id, 2, Region.HEBEI, Answer(b"", "down"))
    assert await store.missing(job.job_id, Region.TIANJIN) == [0, 2]
    assert await store.missing(job.job_id, Region.HEBEI) == [0, 1]
    assert await store.missing(job.job_id, Region.BEIJING) == [0, 1, 2]
    assert await store.answered(job.job_id) == {"tianjin": 1, "hebei": 1}


async def test_finished_jobs_are_no_longer_unfinished(store: JobStore) -> None:
    first, second = a_job("b_1"), a_job("b_2")
    await store.create(first, LIST)
    await store.create(second, LIST)
    assert sorted(await store.unfinished()) == ["b_1", "b_2"]
    finished = datetime(2025, 6, 16, 2, 0, tzinfo=UTC)
    await store.finish("b_1", finished)
    assert await store.unfinished() == ["b_2"]
    done = await store.job("b_1")
    assert done is not None and done.status == "done" and done.finished_at == finished


async def test_names_and_repeats_are_kept_beside_the_entries(store: JobStore) -> None:
    job = a_job(chunks=2, total=4)
    names = [["甲公司", ""], ["乙公司", "=HYPERLINK(1)"]]
    await store.create(job, [["A", ""], ["a", "B"]], names=names, duplicate_of=[{}, {0: 1}])
    first, second = [await store.chunk(job.job_id, n) for n in range(2)]
    assert (first.names, first.duplicate_of) == (["甲公司", ""], {})
    assert (second.names, second.duplicate_of) == (["乙公司", "=HYPERLINK(1)"], {0: 1})
    chunks = await asyncio.to_thread(lambda: list(store.chunks(job.job_id, first=1)))
    assert [(c.chunk_no, c.entries, c.names, c.duplicate_of) for c in chunks] == [(1, ["a", "B"], names[1], {0: 1})]
    plain = a_job("b_plain", chunks=1, total=1)
    await store.create(plain, [["A"]])
    assert (await store.chunk("b_plain", 0)).names is None


async def test_an_officers_jobs_are_listed_newest_first_with_their_counts(store: JobStore) -> None:
    for n in range(5):
        job = dataclasses.replace(a_job(f"b_{n}"), created_at=datetime(2025, 6, 16, n, tzinfo=UTC))
        await store.create(job, [["A"]])
    await store.create(dataclasses.replace(a_job("b_other"), created_by="another"), [["A"]])
    counts = {"subjects": 1, "clear": 1}
    await store.finish("b_3", datetime(2025, 6, 16, 4, tzinfo=UTC), counts)
    first = await store.by_creator("agency", offset=0, limit=3)
    assert [j.job_id for j in first] == ["b_4", "b_3", "b_2"]
    assert first[1].counts == counts and first[0].counts is None
    assert [j.job_id for j in await store.by_creator("agency", offset=3, limit=3)] == ["b_1", "b_0"]
    assert [j.job_id for j in await store.by_creator("another", offset=0, limit=3)] == ["b_other"]
    # Counts of a job done before they were kept with it are kept once; kept ones stay.
    await store.keep_counts("b_2", {"subjects": 1, "empty": 1})
    await store.keep_counts("b_3", {"subjects": 9})
    assert (await store.job("b_2")).counts == {"subjects": 1, "empty": 1}  # type: ignore[union-attr]
    assert (await store.job("b_3")).counts == counts  # type: ignore[union-attr]
