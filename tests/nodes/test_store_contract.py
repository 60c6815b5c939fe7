"""One contract for the record store seam, run against the SQL store and its in-memory twin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from credit.regions import Region
from credit.rules import RecordStatus
from nodes.db import migrate, sync_engine
from nodes.records import RecordDraft
from nodes.store import MemoryRecordStore, RecordStore, SqlRecordStore, SqlRecordWriter, WriteCounts
from tests.nodes.builders import ACME, OTHER, penalty

NOW = datetime(2025, 6, 16, 8, 0, tzinfo=UTC)


class Harness:
    def __init__(self, store: RecordStore, writer: object) -> None:
        self.store = store
        self._writer = writer

    def write(self, drafts: Sequence[RecordDraft]) -> WriteCounts:
        return self._writer.write(drafts, source="contract", now=NOW)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=["memory", "sql"])
async def harness(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[Harness]:
    if request.param == "memory":
        store = MemoryRecordStore(region=Region.TIANJIN)
        yield Harness(store, store)
        return
    migrate(db_url)
    engine = sync_engine(db_url)
    store = SqlRecordStore(sync_engine(db_url), region=Region.TIANJIN)
    yield Harness(store, SqlRecordWriter(engine))
    store.close()
    engine.dispose()


async def test_current_versions_and_history(harness: Harness) -> None:
    first = penalty(decision_no="K-1")
    counts = harness.write([first, penalty(OTHER, decision_no="K-2")])
    assert (counts.added, counts.changed, counts.unchanged) == (2, 0, 0)
    assert harness.write([first]).unchanged == 1

    repaired = penalty(decision_no="K-1", status=RecordStatus.REPAIRED)
    assert repaired.record_id == first.record_id
    assert harness.write([repaired]).changed == 1

    current = await harness.store.current_for(ACME)
    assert [(r.decision_no, r.version, r.status) for r in current] == [("K-1", 2, RecordStatus.REPAIRED)]
    assert current[0].provenance is not None and current[0].provenance.content_hash == repaired.content_hash
    many = await harness.store.current_for_many([ACME, OTHER, "91350100M000100Y43"])
    assert sorted(many) == sorted([ACME, OTHER])
    history = await harness.store.changes(0, 100)
    assert [(r.decision_no, r.version) for _, r in history] == [("K-1", 1), ("K-2", 1), ("K-1", 2)]
    assert [seq for seq, _ in await harness.store.changes(history[0][0], 1)] == [history[1][0]]
    assert await harness.store.data_as_of() is not None


async def test_a_history_in_one_batch_is_idempotent(harness: Harness) -> None:
    history = [penalty(decision_no="H-1"), penalty(decision_no="H-1", status=RecordStatus.REVOKED)]
    assert harness.write(history).added == 1
    again = harness.write(history)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 2)
    current = await harness.store.current_for(ACME)
    assert [(r.version, r.status) for r in current] == [(2, RecordStatus.REVOKED)]
