"""One contract for the record store seam, run against the SQL store and its in-memory twin."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from credit.catalogue import Scope
from credit.profiles import get_profile
from credit.regions import Region
from credit.rules import RecordStatus, counts
from credit.window import compute_window
from infra.db import sync_engine
from nodes.db import migrate
from nodes.records import RecordDraft
from nodes.store import MemoryRecordStore, RecordStore, SqlRecordStore, SqlRecordWriter, WriteCounts
from tests.nodes.builders import ACME, OTHER, penalty, random_penalty

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


def _random_drafts(rng: random.Random, n: int) -> list[RecordDraft]:
    subjects = [ACME, OTHER, "91350100M000100Y43"]
    domains = ["market_regulation", "taxation", "work_safety", "ecology_environment"]
    edges = [APPLIED_WINDOW.start, APPLIED_WINDOW.cutoff]
    drafts = []
    for i in range(n):
        edge = rng.choice(edges)
        decided = edge + timedelta(days=rng.choice((-400, -1, 0, 1, 30)))
        subject, domain = rng.choice(subjects), rng.choice(domains)
        drafts.append(random_penalty(rng, subject, decision_no=f"R-{i}", decided_on=decided, domain=domain))
    return drafts


APPLIED_WINDOW = compute_window(date(2025, 6, 16), 3, get_profile("tianjin-2023"))


@pytest.mark.parametrize("profile_id", ["tianjin-2023", "national-2025"])
async def test_counted_in_the_store_agrees_with_the_core_rules(harness: Harness, profile_id: str) -> None:
    drafts = _random_drafts(random.Random(profile_id), 400)
    harness.write(drafts)
    profile = get_profile(profile_id)
    window = compute_window(date(2025, 6, 16), 3, profile)
    current = await harness.store.current_for_many([ACME, OTHER, "91350100M000100Y43"])
    expected: dict[str, Counter[tuple[str, Scope]]] = {}
    for subject_id, found in current.items():
        for record in found:
            if counts(record, profile, window):
                expected.setdefault(subject_id, Counter())[(record.domain, record.scope)] += 1
    got = await harness.store.counted([ACME, OTHER, "91350100M000100Y43"], profile, window)
    assert {sid: Counter({(d, s): n for d, s, n in hits}) for sid, hits in got.items()} == expected
    assert expected  # the random data does hit the rules
