"""infra.db on PostgreSQL with several processes: group commits of two processes that
deadlock are run again rather than failed, and processes starting together migrate one
after the other."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, inspect, text

from gateway.registry import MIGRATIONS
from infra.db import DEADLOCK_ATTEMPTS, GroupCommit, migrate, sync_engine

WAIT = 10.0


@pytest.fixture
def engines(pg_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: two processes' connection pools."""
    first, second = sync_engine(pg_url), sync_engine(pg_url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE rows (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO rows VALUES (1, 0), (2, 0)"))
    yield first, second
    first.dispose()
    second.dispose()


async def test_groups_that_deadlock_are_run_again(engines: tuple[Engine, Engine]) -> None:
    both_locked = threading.Barrier(2, timeout=WAIT)
    runs = {"a": 0, "b": 0}

    def locking(name: str, first: int, then: int):  # type: ignore[no-untyped-def]
        def operation(conn: Connection) -> int:
            runs[name] += 1
            conn.execute(text("UPDATE rows SET n = n + 1 WHERE id = :id"), {"id": first})
            if runs[name] == 1:
                both_locked.wait()  # each holds one row and now asks for the other's
            conn.execute(text("UPDATE rows SET n = n + 1 WHERE id = :id"), {"id": then})
            return runs[name]

        return operation

    one, other = GroupCommit(engines[0]), GroupCommit(engines[1])
    done = await asyncio.wait_for(
        asyncio.gather(one.submit(locking("a", 1, 2)), other.submit(locking("b", 2, 1))), timeout=3 * WAIT
    )
    # PostgreSQL aborted one of them (more than once if the two met again); it ran again
    # and committed, and what it did in the aborted runs left no trace.
    assert min(done) == 1 and 2 <= max(done) <= DEADLOCK_ATTEMPTS
    with engines[0].connect() as conn:
        assert dict(conn.execute(text("SELECT id, n FROM rows")).all()) == {1: 2, 2: 2}


def test_processes_starting_together_migrate_one_after_the_other(pg_url: str) -> None:
    failures: list[BaseException] = []

    def start() -> None:
        try:
            migrate(pg_url, scripts=MIGRATIONS)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    engine = sync_engine(pg_url)
    try:
        assert {"reports", "leases", "session_revocation_head"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM session_revocation_head")).scalar() == 1
    finally:
        engine.dispose()
