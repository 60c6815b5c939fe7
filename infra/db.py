"""Database URLs, engines and migrations: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple, overload

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from credit.errors import InvalidInput


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC time: SQLite hands back naive ones (stored in UTC)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

log = structlog.get_logger("jjj.db")


def database_url(url: str) -> str:
    """The SQLAlchemy URL with the driver this project uses for it.

    ``sqlite:///node.db`` and ``postgresql://…`` are accepted as they are commonly
    written; the standard sqlite3 module and psycopg (3) are used underneath.

    Raises:
        InvalidInput: not a SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput.for_field("db", f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        driver = "pysqlite"
    elif backend == "postgresql":
        driver = "psycopg"
    else:
        raise InvalidInput.for_field("db", f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the node read while an ingest writes; NORMAL is durable across process
    # crashes in WAL mode, which is what a node needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-524288")
    # Read through a memory map: a connection's first reads (every pooled connection,
    # every worker thread) come from the operating system's page cache without a copy.
    cursor.execute("PRAGMA mmap_size=4294967296")
    cursor.close()


def sync_engine(url: str) -> Engine:
    """A synchronous engine (ingest, seeding, migrations).

    Raises:
        InvalidInput: an unsupported URL.
    """
    engine = create_engine(database_url(url))
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def dispose_when_idle(engine: Engine, *, timeout: float = 10.0) -> None:
    """Close the engine's pooled connections once none is checked out (up to ``timeout``
    seconds). A connection still in use on a worker thread when the pool is replaced
    would go back to the old pool and be dropped there unclosed."""
    in_use = getattr(engine.pool, "checkedout", None)
    deadline = time.monotonic() + timeout
    while in_use is not None and in_use() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.dispose()


def _private_sqlite_file(database: str | None) -> None:
    """A new SQLite database is created readable by its owner only (0600, in a 0700
    directory it makes): it holds credit records or accounts. SQLite gives the journal
    files it creates beside it the same mode. An existing file is left as it is."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def migrate(url: str, *, scripts: Path) -> None:
    """Bring the database at ``url`` to the latest schema of the Alembic scripts in
    ``scripts`` (idempotent): each service passes its own.

    Raises:
        InvalidInput: an unsupported URL.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    engine = sync_engine(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(scripts))
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Processes starting together (replicas, workers) migrate one after the
                # other, the later ones finding the schema at its head; on SQLite the
                # first DDL statement takes the database's write lock.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (_MIGRATION_LOCK,))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


_MIGRATION_LOCK = "jjj schema migrations"


# Attempts at a group's transaction when the database aborts it as a deadlock's victim.
DEADLOCK_ATTEMPTS = 3
_RACE_LOST = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock_detected, serialization_failure


def _race_lost(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock or a serialisation race."""
    return isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) in _RACE_LOST


class GroupCommit:
    """Writes from many requests, committed together.

    Each submitted operation runs inside a transaction on a worker thread. Operations
    that arrive while a transaction is being written wait for the next one and share it,
    so under load one commit serves many writes, and a caller is answered only once its
    write is committed. If a shared transaction fails on an integrity error, its
    operations run again one transaction each, so one bad write refuses only itself; if
    PostgreSQL aborts it to break a deadlock with another process's transaction, it runs
    again whole. An operation must therefore read what it depends on inside its
    transaction, and may run more than once.

    With ``inline`` (SQLite only), a group's transaction runs on the event loop itself,
    on a connection the writer keeps: a SQLite commit in WAL mode is a few hundred
    microseconds of work that holds the GIL for most of it, so the hop to a thread and
    back (and the two threads taking the GIL from each other) cost more than the write.
    Only the cheap part runs inline; whatever could wait runs on the thread as before:

    - that connection never waits for the write lock (``busy_timeout`` 0): when another
      connection or process holds it, the group is run again on the thread, which waits
      as long as any other writer would;
    - it never checkpoints the write-ahead log itself (``wal_autocheckpoint`` 0: a
      checkpoint copies megabytes and syncs the file, tens of milliseconds). Once
      ``checkpoint_every`` seconds have passed since the last one, the next group runs
      on the thread followed by a checkpoint there, while no other group of this writer
      can start: the next write then starts the log afresh, so it stays small.

    A group that fails inline on an integrity error runs again on the thread (one
    transaction per operation there), since nothing of it was committed.
    """

    def __init__(self, engine: Engine, *, inline: bool = False, checkpoint_every: float = 1.0) -> None:
        if inline and engine.dialect.name != "sqlite":
            raise ValueError("inline group commit is for SQLite only")
        self.engine = engine
        self.inline = inline
        self.checkpoint_every = checkpoint_every
        self._pending: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._kept: Connection | None = None  # inline: detached from the pool, closed by close()
        self._checkpointed_at = time.monotonic()

    async def submit(self, operation: Callable[[Connection], _T]) -> _T:
        """Run ``operation`` in a transaction shared with others; its result once committed.

        Raises:
            Whatever the operation or the database raises for it.
        """
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    def driver_connection(self) -> Any:
        """The driver's connection inline writes use (opened if need be), for reads on the
        event loop between them (see :class:`SqlRunner`'s ``kept``). A read must leave no
        transaction open.

        Raises:
            ValueError: the writer is not inline.
            sqlalchemy.exc.OperationalError: the database cannot be opened.
        """
        if not self.inline:
            raise ValueError("only an inline writer keeps a connection")
        # A detached connection has no pool record, which is where the driver connection
        # is found; for sqlite3 the DBAPI connection is the driver connection.
        return self._connection().connection.dbapi_connection

    def close(self) -> None:
        """Close the connection inline writes use (idempotent); a later write opens another."""
        kept, self._kept = self._kept, None
        if kept is not None:
            with contextlib.suppress(Exception):
                kept.close()

    def _transaction(self, operations: list[Callable[[Connection], Any]]) -> list[Any]:
        """The operations' results, run in one transaction; run again when PostgreSQL
        aborted the transaction to break a deadlock with another process's (two groups
        that lock the same rows, e.g. the audit chain's head and a grant, in opposite
        orders), up to :data:`DEADLOCK_ATTEMPTS` times in all."""
        # Each attempt after the first waits a random few milliseconds, so that the two
        # transactions that deadlocked do not meet again in the same order at once.
        for attempt in Retrying(
            retry=retry_if_exception(_race_lost),
            stop=stop_after_attempt(DEADLOCK_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.01, max=0.2),
            reraise=True,
        ):
            with attempt, self.engine.begin() as conn:
                return [operation(conn) for operation in operations]
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _run_group(self, operations: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        try:
            return [(True, result) for result in self._transaction(operations)]
        except IntegrityError as exc:
            if len(operations) == 1:
                return [(False, exc)]
        outcomes: list[tuple[bool, Any]] = []
        for operation in operations:
            try:
                outcomes.append((True, self._transaction([operation])[0]))
            except Exception as exc:  # noqa: BLE001 - handed to its caller
                outcomes.append((False, exc))
        return outcomes

    def _run_then_checkpoint(self, operations: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        outcomes = self._run_group(operations)
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except OperationalError as exc:  # the next one catches up
            log.warning("wal_checkpoint_failed", error=str(exc.orig)[:200])
        self._checkpointed_at = time.monotonic()
        return outcomes

    def _connection(self) -> Connection:
        if self._kept is None:
            conn = self.engine.connect()
            conn.detach()  # out of the pool's count: never holds up dispose_when_idle()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.commit()
            self._kept = conn
        return self._kept

    def _run_inline(self, operations: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]] | None:
        """The outcomes of the group run in one transaction on the kept connection, or
        None when it must run on the thread (the write lock is taken, or an integrity
        error calls for one transaction per operation); nothing is committed then."""
        conn = self._connection()
        try:
            with conn.begin():
                results = [operation(conn) for operation in operations]
        except IntegrityError as exc:
            return [(False, exc)] if len(operations) == 1 else None
        except OperationalError as exc:
            if _locked(exc):
                return None
            self.close()  # whatever went wrong, the next group starts on a fresh connection
            raise
        except BaseException:
            self.close()
            raise
        return [(True, result) for result in results]

    async def _write(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                operations = [operation for operation, _ in group]
                try:
                    due = self.inline and time.monotonic() - self._checkpointed_at >= self.checkpoint_every
                    outcomes = self._run_inline(operations) if self.inline and not due else None
                    if outcomes is None:
                        run = self._run_then_checkpoint if due else self._run_group
                        outcomes = await asyncio.to_thread(run, operations)
                except Exception as exc:  # noqa: BLE001 - handed to every caller
                    outcomes = [(False, exc)] * len(group)
                for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._writer = None


def _locked(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock it needs."""
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


class DriverStatement:
    """A statement compiled once, for one dialect, to the driver's SQL text and the order
    of its parameters: what :meth:`SqlRunner.with_driver` work executes."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # Positional paramstyles (SQLite's qmark) name their parameters' order; psycopg's
        # pyformat takes them by name.
        self._order = list(compiled.positiontup) if compiled.positiontup is not None else None

    def params(self, **values: Any) -> tuple[Any, ...] | dict[str, Any]:
        return tuple(values[name] for name in self._order) if self._order is not None else values

    def rows(self, driver: Any, **values: Any) -> list[Any]:
        """Every row of the statement run with ``values`` (the cursor closed after)."""
        cursor = driver.cursor()
        try:
            cursor.execute(self.sql, self.params(**values))
            return list(cursor.fetchall())
        finally:
            cursor.close()


class SqlRunner:
    """Synchronous SQLAlchemy work run off the event loop: the one way the services do it.

    Each call is one unit of work on a small pool of worker threads of the runner's own
    (named after its user), awaited by the event loop. Async drivers pay a thread hop
    (aiosqlite) or an extra round trip per DBAPI call; one hop per unit of work was
    measured 3–4× faster on SQLite and clearly faster on PostgreSQL, with the same code
    for both. The work runs in a copy of the caller's context variables (as with
    :func:`asyncio.to_thread`), so a request's log fields follow it.

    Small reads on SQLite run inline, on the event loop itself (``small=True``): such a
    read is an index probe of about a tenth of a millisecond that holds the GIL for most
    of it, so handing it to a thread and waking the loop again costs more than the read,
    and the loop could not run meanwhile anyway. On PostgreSQL a read waits on the
    network with the GIL released, so nothing runs inline there; nor does work not marked
    small, on either database.

    With ``autocommit_reads``, :meth:`with_connection` hands the work a connection in
    autocommit on PostgreSQL: no BEGIN/ROLLBACK round trips, but each statement sees its
    own snapshot, so it is for reads only. SQLite's driver opens no transaction for a
    SELECT in the first place, so its connections stay as they are.

    Writes that must never overlap go through :meth:`write`, on one writer thread.

    The hottest reads (a node's one-subject lookups) go through :meth:`with_driver`: SQL
    compiled once from a Core statement (:class:`DriverStatement`), run on the driver's
    own connection, on SQLite inline on a connection the runner keeps for them. For a
    lookup of a few rows SQLAlchemy's execution and a pool checkout cost several times
    the read itself.

    The engine belongs to the caller: :meth:`close` stops the threads, it does not
    dispose of the engine.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        threads: int,
        autocommit_reads: bool = False,
        kept: Callable[[], Any] | None = None,
    ) -> None:
        sqlite = engine.dialect.name == "sqlite"
        self.engine = engine
        # Where inline driver reads get their connection instead of keeping one of their
        # own: a writer's (GroupCommit.driver_connection). Another connection's commits
        # empty a SQLite connection's page cache; its own do not, so a read on the
        # connection that writes finds its pages still there (about 15 µs instead of 70
        # for a lookup between two commits).
        self._kept_by_owner = kept
        # What :meth:`with_connection` connects through.
        self.reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit_reads and not sqlite else engine
        )
        self._inline_small = sqlite
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-write")
        # The driver connection small driver-level reads use inline (SQLite only), opened
        # at the first such read and closed by close(). It is detached from the pool: a
        # connection kept checked out would hold up dispose_when_idle() of every runner
        # sharing the engine (a node's stores do) until its timeout.
        self._kept: Any = None

    def inline(self, *, small: bool) -> bool:
        """Whether work of this size runs on the event loop itself (see the class)."""
        return small and self._inline_small

    async def with_connection(self, work: Callable[[Connection], _T], *, small: bool = False) -> _T:
        """``work`` given a connection from :attr:`reader`, closed afterwards; its result.

        Use the connection for reads, or commit explicitly: what is left uncommitted is
        rolled back. When the caller is cancelled, work already on a thread still runs to
        its end; its result is dropped.

        Raises:
            RuntimeError: the runner is closed (work that would run on a thread).
            Whatever ``work`` or the database raises.
        """
        return await self.call(self._connected, work, small=small)

    def _connected(self, work: Callable[[Connection], _T]) -> _T:
        with self.reader.connect() as conn:
            return work(conn)

    async def with_driver(self, work: Callable[[Any], _T], *, small: bool = False) -> _T:
        """``work`` given the driver's own connection (``sqlite3`` or ``psycopg``) from
        :attr:`reader`, for reads in SQL compiled once (:class:`DriverStatement`): for a
        one-subject lookup, SQLAlchemy's execution and a pool checkout cost several times
        the read itself. Small reads on SQLite run inline on one connection the runner
        keeps for them; the rest as :meth:`with_connection`. ``work`` must close its
        cursors and leave no transaction open; it gets values as the driver gives them
        (on SQLite, dates and times as ISO text).

        Raises:
            RuntimeError: the runner is closed (work that would run on a thread).
            Whatever ``work`` or the database raises.
        """
        if self.inline(small=small):
            return self._on_kept(work)
        return await self.call(self._connected, lambda conn: work(conn.connection.driver_connection))

    def _on_kept(self, work: Callable[[Any], _T]) -> _T:
        if self._kept_by_owner is not None:
            return work(self._kept_by_owner())  # the owner's to keep, and to renew
        if self._kept is None:
            # Opened through the pool, so that the engine's connect hooks (the SQLite
            # pragmas) run for it, then taken out of the pool's count and care.
            pooled = self.reader.raw_connection()
            driver = pooled.driver_connection
            pooled.detach()
            self._kept = driver
        try:
            return work(self._kept)
        except BaseException:
            # Whatever failed, the next read starts on a fresh connection.
            kept, self._kept = self._kept, None
            with contextlib.suppress(Exception):
                kept.close()
            raise

    async def call(self, work: Callable[[*_Ts], _T], *args: *_Ts, small: bool = False) -> _T:
        """``work(*args)`` (a plain function that uses the database itself); its result.

        When the caller is cancelled, work already on a thread still runs to its end;
        its result is dropped.

        Raises:
            RuntimeError: the runner is closed (work that would run on a thread).
            Whatever ``work`` raises.
        """
        if self.inline(small=small):
            return work(*args)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, work, *args)

    async def write(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on the writer thread, after the writes submitted before it; its result.

        One write at a time, so that the writers of one runner never contend for the
        database's write lock. A write cannot be stopped half-way: when the caller is
        cancelled (once or more), it still waits until the write has committed or rolled
        back before the cancellation goes on, so that once a caller has stopped, nothing
        of its write is still being written.

        Raises:
            RuntimeError: the runner is closed.
            asyncio.CancelledError: the caller was cancelled (raised once the write ended).
            Whatever ``work`` raises.
        """
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(self._writer, context.run, work)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([future])
            raise

    def close(self) -> None:
        """Stop the threads once the work submitted to them has ended (idempotent).

        Small reads on SQLite still run inline afterwards; anything else raises
        RuntimeError.
        """
        self._writer.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()
