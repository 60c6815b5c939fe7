"""infra.db.SqlRunner: where work runs (inline or on a thread), autocommit reads on
PostgreSQL, the single writer and its cancellation guarantee, closing."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from infra.db import SqlRunner, dispose_when_idle, sync_engine

WAIT = 10.0  # seconds a test waits for a thread before it counts as stuck
REQUEST = contextvars.ContextVar("REQUEST", default="")


def _engine_with_table(url: str) -> Engine:
    engine = sync_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (n INTEGER NOT NULL)"))
    return engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _engine_with_table(f"sqlite:///{tmp_path / 'runner.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = _engine_with_table(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The runner's behaviour that does not depend on the database, on both."""
    found: Engine = request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_engine")
    return found


@pytest.fixture
def runner(engine: Engine) -> Iterator[SqlRunner]:
    made = SqlRunner(engine, name="test-runner", threads=2)
    yield made
    made.close()


def _thread_name() -> str:
    return threading.current_thread().name


def _stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [n for (n,) in conn.execute(text("SELECT n FROM items ORDER BY n"))]


async def _until(event: threading.Event) -> None:
    async with asyncio.timeout(WAIT):
        while not event.is_set():
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------- inline or on a thread


async def test_on_sqlite_small_work_runs_on_the_event_loop_and_other_work_on_a_named_thread(
    sqlite_engine: Engine,
) -> None:
    runner = SqlRunner(sqlite_engine, name="lookup", threads=2)
    try:
        loop_thread = _thread_name()
        assert runner.inline(small=True) and not runner.inline(small=False)
        assert await runner.call(_thread_name, small=True) == loop_thread
        assert (await runner.call(_thread_name)).startswith("lookup")
        assert await runner.with_connection(lambda conn: _thread_name(), small=True) == loop_thread
        assert (await runner.with_connection(lambda conn: _thread_name())).startswith("lookup")
    finally:
        runner.close()


async def test_on_postgresql_even_small_work_runs_on_a_thread(pg_engine: Engine) -> None:
    runner = SqlRunner(pg_engine, name="lookup", threads=2)
    try:
        assert not runner.inline(small=True)
        assert (await runner.call(_thread_name, small=True)).startswith("lookup")
        assert (await runner.with_connection(lambda conn: _thread_name(), small=True)).startswith("lookup")
    finally:
        runner.close()


async def test_the_pool_is_bounded(sqlite_engine: Engine) -> None:
    runner = SqlRunner(sqlite_engine, name="bounded", threads=2)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        threading.Event().wait(0.02)
        with lock:
            inside -= 1

    try:
        await asyncio.gather(*(runner.call(work) for _ in range(8)))
    finally:
        runner.close()
    assert most == 2


async def test_results_arguments_errors_and_context_reach_the_caller(runner: SqlRunner) -> None:
    assert await runner.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ValueError, match="refused"):
        await runner.call(_refuse)
    with pytest.raises(ValueError, match="refused"):
        await runner.write(_refuse)
    # The caller's context variables (a request's log fields) follow it onto the thread.
    REQUEST.set("req-1")
    assert await runner.call(REQUEST.get) == "req-1"
    assert await runner.write(REQUEST.get) == "req-1"


def _refuse() -> None:
    raise ValueError("refused")


async def test_a_connection_is_handed_to_the_work_and_what_is_left_uncommitted_is_rolled_back(
    runner: SqlRunner, engine: Engine
) -> None:
    def insert(conn: Connection) -> int:
        conn.execute(text("INSERT INTO items (n) VALUES (1)"))
        return int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())

    assert await runner.with_connection(insert) == 1
    assert _stored(engine) == []


# ---------------------------------------------------------------- autocommit reads


def _transaction_ids(conn: Connection) -> tuple[int, int]:
    first = conn.execute(text("SELECT txid_current()")).scalar_one()
    second = conn.execute(text("SELECT txid_current()")).scalar_one()
    return first, second


async def test_on_postgresql_autocommit_reads_run_each_statement_on_its_own(pg_engine: Engine) -> None:
    runner = SqlRunner(pg_engine, name="reads", threads=2, autocommit_reads=True)
    plain = SqlRunner(pg_engine, name="plain", threads=2)
    try:
        assert runner.reader is not pg_engine
        assert runner.reader.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
        assert await runner.with_connection(lambda conn: conn.connection.driver_connection.autocommit) is True
        first, second = await runner.with_connection(_transaction_ids)
        assert first != second  # no BEGIN: each statement its own transaction
        # Without the option the work runs in one transaction, as SQLAlchemy begins it.
        assert plain.reader is pg_engine
        assert await plain.with_connection(lambda conn: conn.connection.driver_connection.autocommit) is False
        first, second = await plain.with_connection(_transaction_ids)
        assert first == second
    finally:
        runner.close()
        plain.close()


async def test_on_sqlite_autocommit_reads_use_the_engine_as_it_is(sqlite_engine: Engine) -> None:
    # SQLite's driver opens no transaction for a SELECT: nothing to save.
    runner = SqlRunner(sqlite_engine, name="reads", threads=2, autocommit_reads=True)
    try:
        assert runner.reader is sqlite_engine
        assert await runner.with_connection(lambda conn: conn.execute(text("SELECT count(*) FROM items")).scalar()) == 0
    finally:
        runner.close()


# ---------------------------------------------------------------- the single writer


async def test_writes_run_one_at_a_time_in_the_order_given_on_the_writer_thread(
    runner: SqlRunner, engine: Engine
) -> None:
    running = 0
    overlapped = False
    threads: set[str] = set()

    def write(n: int) -> int:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        threads.add(_thread_name())
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO items (n) VALUES (:n)"), {"n": n})
        running -= 1
        return n

    results = await asyncio.gather(*(runner.write(lambda n=n: write(n)) for n in range(20)))
    assert results == list(range(20))
    assert not overlapped
    assert len(threads) == 1 and next(iter(threads)).startswith("test-runner-write")
    assert _stored(engine) == list(range(20))


class _HeldWrite:
    """A write that inserts a row, then holds its transaction open until released."""

    def __init__(self, engine: Engine, *, fail: bool = False) -> None:
        self.engine = engine
        self.fail = fail
        self.started = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()

    def __call__(self) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO items (n) VALUES (7)"))
                self.started.set()
                if not self.release.wait(WAIT):
                    raise TimeoutError("never released")
                if self.fail:
                    raise ValueError("rolled back")
        finally:
            self.ended.set()


@pytest.mark.parametrize("cancellations", [1, 3])
async def test_a_cancelled_writer_waits_until_its_write_has_committed(
    runner: SqlRunner, engine: Engine, cancellations: int
) -> None:
    write = _HeldWrite(engine)
    task = asyncio.create_task(runner.write(write))
    await _until(write.started)
    for _ in range(cancellations):
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # the cancellation waits for the write, however often repeated
    write.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert write.ended.is_set()
    assert _stored(engine) == [7]


async def test_a_cancelled_writer_waits_until_its_write_has_rolled_back(runner: SqlRunner, engine: Engine) -> None:
    write = _HeldWrite(engine, fail=True)
    task = asyncio.create_task(runner.write(write))
    await _until(write.started)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()
    write.release.set()
    # The caller was cancelled: it learns that, not the write's error.
    with pytest.raises(asyncio.CancelledError):
        await task
    assert write.ended.is_set()
    assert _stored(engine) == []


# ---------------------------------------------------------------- closing


@pytest.mark.parametrize("first", ["read", "write"])
async def test_close_waits_for_the_work_already_given_then_refuses_more(sqlite_engine: Engine, first: str) -> None:
    runner = SqlRunner(sqlite_engine, name="closing", threads=2)
    read = threading.Event()
    write = _HeldWrite(sqlite_engine)

    def slow_read() -> str:
        read.wait(WAIT)
        return "read"

    reading = asyncio.create_task(runner.call(slow_read))
    writing = asyncio.create_task(runner.write(write))
    await _until(write.started)
    closing = asyncio.create_task(asyncio.to_thread(runner.close))
    # Close returns only once both the read and the write have ended, in either order.
    for release in [read, write.release] if first == "read" else [write.release, read]:
        await asyncio.sleep(0.05)
        assert not closing.done()
        release.set()
    await asyncio.wait_for(closing, WAIT)
    assert await reading == "read"
    assert await writing is None
    assert _stored(sqlite_engine) == [7]

    with pytest.raises(RuntimeError):
        await runner.call(_thread_name)
    with pytest.raises(RuntimeError):
        await runner.with_connection(lambda conn: None)
    with pytest.raises(RuntimeError):
        await runner.write(_thread_name)
    # Small reads on SQLite need no thread: they still run.
    assert await runner.call(_thread_name, small=True) == _thread_name()
    runner.close()  # again: nothing happens
    # The engine belongs to the caller: still usable.
    assert _stored(sqlite_engine) == [7]


async def test_close_on_postgresql_refuses_small_reads_too(pg_engine: Engine) -> None:
    runner = SqlRunner(pg_engine, name="closing", threads=2)
    runner.close()
    with pytest.raises(RuntimeError):
        await runner.call(_thread_name, small=True)


async def test_runners_sharing_an_engine_close_without_waiting_on_each_others_kept_connection(
    sqlite_engine: Engine,
) -> None:
    # A node's stores share one engine; each keeps a driver connection for its inline
    # one-subject reads. Disposing of the engine after one runner has closed must not
    # wait for the connection another still keeps (it used to, until the timeout).
    first = SqlRunner(sqlite_engine, name="first", threads=1)
    second = SqlRunner(sqlite_engine, name="second", threads=1)
    for runner in (first, second):
        assert await runner.with_driver(
            lambda driver: driver.execute("SELECT count(*) FROM items").fetchall(), small=True
        ) == [(0,)]
    assert sqlite_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    first.close()
    started = time.monotonic()
    dispose_when_idle(sqlite_engine, timeout=WAIT)
    assert time.monotonic() - started < 1.0
    # The other's kept connection still reads, with the engine's pragmas applied to it.
    assert await second.with_driver(lambda driver: driver.execute("PRAGMA journal_mode").fetchall(), small=True) == [
        ("wal",)
    ]
    second.close()
    assert second._kept is None
