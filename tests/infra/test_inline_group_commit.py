"""infra.db.GroupCommit inline on SQLite: groups written on the event loop, a group run
on the thread when another connection holds the write lock, integrity errors that fail
only their own write, and a write-ahead log kept small by checkpoints off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from infra.db import DriverStatement, GroupCommit, SqlRunner, sync_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sync_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"))
    yield engine
    engine.dispose()


def insert(row_id: int, size: int = 10):  # type: ignore[no-untyped-def]
    def operation(conn: Connection) -> int:
        conn.execute(text("INSERT INTO rows VALUES (:id, :body)"), {"id": row_id, "body": b"x" * size})
        return row_id

    return operation


def ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM rows ORDER BY id"))]


async def test_groups_are_written_inline_and_a_bad_write_fails_alone(engine: Engine) -> None:
    writes = GroupCommit(engine, inline=True)
    try:
        assert await asyncio.gather(*(writes.submit(insert(i)) for i in range(1, 6))) == [1, 2, 3, 4, 5]
        outcomes = await asyncio.gather(
            writes.submit(insert(6)), writes.submit(insert(3)), writes.submit(insert(7)), return_exceptions=True
        )
        assert outcomes[0] == 6 and outcomes[2] == 7 and isinstance(outcomes[1], IntegrityError)
        assert ids(engine) == [1, 2, 3, 4, 5, 6, 7]
    finally:
        writes.close()


async def test_a_write_lock_held_elsewhere_is_waited_for_off_the_loop(engine: Engine, tmp_path: Path) -> None:
    writes = GroupCommit(engine, inline=True)
    await writes.submit(insert(1))
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's transaction holds the write lock
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    try:
        waiting = asyncio.create_task(writes.submit(insert(2)))
        await asyncio.sleep(0.3)
        assert not waiting.done() and ticks >= 10  # the write waits, the loop does not
        other.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 10) == 2
        assert ids(engine) == [1, 2]
    finally:
        ticker.cancel()
        other.close()
        writes.close()


async def test_the_log_is_checkpointed_off_the_loop_and_stays_small(engine: Engine, tmp_path: Path) -> None:
    writes = GroupCommit(engine, inline=True, checkpoint_every=0.05)
    wal = tmp_path / "w.db-wal"
    try:
        for i in range(200):  # 200 × 20 kB written over about 0.4 s
            await writes.submit(insert(i, size=20_000))
            await asyncio.sleep(0.002)
        assert len(ids(engine)) == 200
        # Without checkpoints the log would hold all 4 MB; it is started afresh after each.
        assert wal.stat().st_size < 2_000_000
    finally:
        writes.close()


def test_inline_is_for_sqlite_only(pg_url: str) -> None:
    engine = sync_engine(pg_url)
    try:
        with pytest.raises(ValueError, match="SQLite only"):
            GroupCommit(engine, inline=True)
    finally:
        engine.dispose()


async def test_small_reads_can_share_the_inline_writers_connection(engine: Engine) -> None:
    writes = GroupCommit(engine, inline=True)
    runner = SqlRunner(engine, name="test", threads=1, kept=writes.driver_connection)
    statement = DriverStatement(text("SELECT id FROM rows WHERE id = :id"), engine.dialect)
    try:
        for i in range(1, 4):
            await writes.submit(insert(i))
            rows = await runner.with_driver(lambda driver, i=i: statement.rows(driver, id=i), small=True)  # type: ignore[misc]
            assert rows == [(i,)]
        assert ids(engine) == [1, 2, 3]  # each read left no transaction open: the writes committed
    finally:
        runner.close()
        writes.close()
    with pytest.raises(ValueError, match="inline"):
        GroupCommit(engine).driver_connection()
