"""A batch check answers the same on SQLite and on PostgreSQL, also once PostgreSQL
runs the counting statement as a prepared statement with the plan it keeps for it."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from credit.catalogue import catalogue
from credit.identifiers import SubjectKind, make_resident_id, make_uscc
from credit.queries import QueryOptions, SparseBatch
from credit.regions import Region
from infra.db import sync_engine
from nodes.records import RecordDraft
from nodes.service import NodeService
from nodes.store import SqlRecordStore
from tests.conftest import load
from tests.nodes.builders import ACME, APPLIED, OTHER, random_penalty

PERSON = make_resident_id("12010419800101123")
WITHOUT_RECORDS = make_uscc("91120101MA01AAAA1")
# With records, without, repeated (also in lower case and padded), and invalid.
LISTED = [
    ACME,
    WITHOUT_RECORDS,
    OTHER,
    ACME,
    "not-a-code",
    PERSON,
    "",
    f"  {OTHER.lower()} ",
    make_uscc("91120102MA02BBBB2")[:-1] + "0",
    WITHOUT_RECORDS,
    PERSON,
]


def _drafts() -> list[RecordDraft]:
    """Records on both sides of every rule the count applies: scopes, statuses,
    procedures, the not-penalised mark, and dates around the window's edges."""
    rng = random.Random(7)
    drafts = []
    for i in range(300):
        subject, kind = rng.choice([(ACME, SubjectKind.ENTERPRISE), (OTHER, SubjectKind.ENTERPRISE)])
        if i % 5 == 0:
            subject, kind = PERSON, SubjectKind.PERSON
        decided = APPLIED - timedelta(days=rng.choice((5, 11, 12, 400, 1090, 1100, 1200)))
        domain = rng.choice(["market_regulation", "taxation", "work_safety"])
        drafts.append(random_penalty(rng, subject, kind=kind, decision_no=f"B-{i}", decided_on=decided, domain=domain))
    return drafts


async def _answers(db: str, runs: int) -> list[tuple[object, ...]]:
    load(db, _drafts())
    store = SqlRecordStore(sync_engine(db), region=Region.TIANJIN)
    service = NodeService(store=store, catalogue=catalogue(Region.TIANJIN))
    try:
        answers = []
        for run in range(runs):
            options = QueryOptions(profile=("tianjin-2023", "national-2025")[run % 2], application_date=APPLIED)
            sparse = await service.check_sparse(LISTED, options, purpose="贷前审查")
            full = await service.check(LISTED, options, purpose="贷前审查")
            assert SparseBatch.of(full).notable == sparse.notable
            answers.append((sparse.kinds, sparse.notable))
        return answers
    finally:
        store.close()


async def test_a_batch_check_answers_the_same_on_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    # Sixteen runs, eight per profile, each counting twice: the driver prepares a
    # statement from its sixth run on a connection, PostgreSQL plans it once for all
    # parameters after five runs more.
    on_postgresql = await _answers(pg_url, 16)
    on_sqlite = await _answers(f"sqlite:///{tmp_path / 'node.db'}", 16)
    assert on_postgresql == on_sqlite
    assert on_postgresql[0] != on_postgresql[1]  # the two profiles count differently
    kinds, notable = on_sqlite[0]
    assert kinds[4] is None and kinds[6] is None and 4 in notable  # invalid and blank entries
    hits = {index for index, check in notable.items() if check.summary is not None and check.summary.hits}
    assert {0, 2, 3, 7} <= hits  # records found, repeated rows and lower case alike
    assert kinds[5] is kinds[10] is SubjectKind.PERSON
    assert 1 not in notable and 9 not in notable  # no records: plain
