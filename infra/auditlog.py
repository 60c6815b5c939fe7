"""The audit log in a database: the gateway's log of every access, and a node's log of
the on-behalf-of assertions it served. The chain itself is :mod:`credit.audit`.

Three tables, created by each side's migrations: ``audit_entries`` (append-only),
``audit_checkpoints`` (signed seals) and ``audit_head`` (one row: the last number and
hash, and the last number sealed). Appending updates the head row first, which takes the
write lock on SQLite and the row lock on PostgreSQL, so several processes on one
database still build a single chain. Appends go through a :class:`~infra.db.GroupCommit`:
under load many entries share one commit, and a caller is answered only once its entry
is committed.

A gateway's database has a fourth, ``audit_peer_checkpoints``: the checkpoints it saw
its trusted peers publish (:class:`PeerCheckpoints`).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)

from credit.audit import (
    Cadence,
    ChainReport,
    Checkpoint,
    Entry,
    Event,
    Head,
    chain,
    seal,
    verify_chain,
)
from credit.signing import Keyring, SigningKey
from infra.db import GroupCommit, as_utc

log = structlog.get_logger("jjj.audit")

_T = TypeVar("_T")

metadata = MetaData()


def _entry_columns() -> list[Column[Any]]:
    return [
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("actor", String(128), nullable=False),
        Column("role", String(32), nullable=False),
        Column("action", String(32), nullable=False),
        Column("subject", String(18), nullable=False),
        Column("purpose", String(200), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("detail", Text, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
    ]


def _checkpoint_columns() -> list[Column[Any]]:
    return [
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("hash", String(64), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("jws", Text, nullable=False),
    ]


def _head_columns() -> list[Column[Any]]:
    return [
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("seq", Integer, nullable=False),
        Column("hash", String(64), nullable=False),
        Column("sealed_seq", Integer, nullable=False),
    ]


entries = Table(
    "audit_entries",
    metadata,
    *_entry_columns(),
    Index("ix_audit_subject", "subject", "seq"),
    Index("ix_audit_actor", "actor", "seq"),
)
checkpoints = Table("audit_checkpoints", metadata, *_checkpoint_columns())
head = Table("audit_head", metadata, *_head_columns())
# The gateway's migration g0008 creates it (with its own copy of these columns).
peer_checkpoints = Table(
    "audit_peer_checkpoints",
    metadata,
    Column("issuer", String(200), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("jws", Text, nullable=False),
    Column("kept_at", DateTime(timezone=True), nullable=False),
)


# Built once (building a statement costs more than running it on SQLite).
_ADVANCE = (
    update(head)
    .where(head.c.id == 1)
    .values(seq=head.c.seq + bindparam("count", type_=Integer))
    .returning(head.c.seq, head.c.hash, head.c.sealed_seq)
)
_LOCK_HEAD = (
    update(head).where(head.c.id == 1).values(seq=head.c.seq).returning(head.c.seq, head.c.hash, head.c.sealed_seq)
)
_INSERT_ENTRY = insert(entries)
_SET_HASH = update(head).where(head.c.id == 1).values(hash=bindparam("new_hash"))
_SET_HASH_SEALED = (
    update(head).where(head.c.id == 1).values(hash=bindparam("new_hash"), sealed_seq=bindparam("new_sealed"))
)
_INSERT_CHECKPOINT = insert(checkpoints)


def _entry(row: Any) -> Entry:
    return Entry(
        row.seq,
        as_utc(row.at),
        row.actor,
        row.role,
        row.action,
        row.subject,
        row.purpose,
        row.outcome,
        row.detail,
        row.prev_hash,
        row.hash,
    )


class AuditLog:
    """Appends events to the chain, seals it, reads it back and checks it.

    ``sealer`` gives the key that signs checkpoints (the gateway's current key, or a
    node's audit key); without one the chain is kept unsealed. With one, the log keeps
    the :class:`~credit.audit.Cadence` its verifier holds it to: a checkpoint of every
    ``seal_every``-th entry, written with it; one whenever :meth:`seal` is called (the
    gateway calls it periodically); and, before a process's first entry, one of what an
    earlier process left unsealed. ``clock`` gives the entries' times (tests set it).

    Events are appended in two ways: :meth:`record` answers once its entry is committed;
    :meth:`record_behind` answers at once, and its entry is written with the others
    recorded within ``linger`` seconds, in one transaction (a node's log of the
    assertions it serves: appended one query at a time, it cost a node a quarter of its
    work per query). While ``backlog`` entries wait unwritten, :meth:`record_behind`
    waits for its own like :meth:`record`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        writes: GroupCommit | None = None,
        sealer: Callable[[], SigningKey] | None = None,
        seal_every: int = Cadence().entries,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        linger: float = 0.1,
        backlog: int = 10_000,
    ) -> None:
        self.engine = engine
        self.writes = writes or GroupCommit(engine)
        self.sealer = sealer
        self.seal_every = seal_every
        self.clock = clock
        self.linger = linger
        self.backlog = backlog
        # Events not yet handed to the writer, each with the future of a caller that
        # waits for it (None: recorded behind).
        self._queue: list[tuple[datetime, Event, asyncio.Future[Entry] | None]] = []
        self._flush_handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._flush_soon = False  # the scheduled flush is the prompt one
        self._unwritten = 0  # entries handed to the writer, not yet committed
        self._writers: set[asyncio.Future[None]] = set()
        self._took_over_at: int | None = None  # the head when this process first appended

    def _append(self, conn: Connection, items: list[tuple[datetime, Event]]) -> list[Entry]:
        # Advancing the head first takes the lock (see the module's docstring); the
        # entries then follow it in order, in one statement.
        last, prev, sealed_seq = conn.execute(_ADVANCE, {"count": len(items)}).one()
        before = last - len(items)
        if self.sealer is not None:
            if self._took_over_at is None:
                self._took_over_at = before
            if sealed_seq < self._took_over_at:
                # What an earlier process left unsealed (it stopped before its next seal)
                # is sealed before this one's entries, so that no stretch without a
                # checkpoint spans a restart.
                known = prev if before == self._took_over_at else None
                if self._seal_entry(conn, self._took_over_at, known, self.sealer()) is None:
                    self._took_over_at = sealed_seq  # a broken log: once is enough
        chained, due = [], []
        for seq, (at, event) in enumerate(items, start=before + 1):
            entry = chain(prev, seq, at, event)
            chained.append(entry)
            prev = entry.hash
            if self.sealer is not None and seq % self.seal_every == 0:
                due.append(seal(entry, self.sealer()))
        conn.execute(_INSERT_ENTRY, [{name: getattr(e, name) for name in Entry.__slots__} for e in chained])
        for checkpoint in due:
            self._write_checkpoint(conn, checkpoint)
        if due:
            conn.execute(_SET_HASH_SEALED, {"new_hash": prev, "new_sealed": due[-1].seq})
        else:
            conn.execute(_SET_HASH, {"new_hash": prev})
        return chained

    @staticmethod
    def _write_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
        conn.execute(
            _INSERT_CHECKPOINT,
            {"seq": checkpoint.seq, "hash": checkpoint.hash, "at": checkpoint.at, "jws": checkpoint.jws},
        )

    @classmethod
    def _seal_entry(cls, conn: Connection, seq: int, head_hash: str | None, key: SigningKey) -> Checkpoint | None:
        """Write the checkpoint of entry ``seq`` (which must carry ``head_hash`` where the
        head names it), the head row already locked by the caller."""
        row = conn.execute(select(entries).where(entries.c.seq == seq)).one_or_none()
        if row is None or (head_hash is not None and row.hash != head_hash):
            # Never seal what does not match the head: leave it to `jjj audit verify`.
            log.error("audit_head_mismatch", seq=seq)
            return None
        checkpoint = seal(_entry(row), key)
        cls._write_checkpoint(conn, checkpoint)
        conn.execute(update(head).where(head.c.id == 1).values(sealed_seq=seq))
        return checkpoint

    async def record(self, event: Event) -> Entry:
        """Append an event; returns its entry once committed. Events recorded together
        are appended by one operation of the shared writer (with those recorded behind
        that still wait).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._queue.append((self.clock(), event, future))
        self._schedule(soon=True)
        return await future

    async def record_with(self, event: Event, operation: Callable[[Connection], _T]) -> tuple[_T, Entry]:
        """Run ``operation`` (the write that ``event`` tells of) and append the event, in
        one transaction: both are committed or neither is. Returns the operation's result
        and the entry, once committed. The transaction may be shared with other writes
        of the writer (see :class:`~infra.db.GroupCommit`); if it fails on an integrity
        error, this operation and its event are tried again in one of their own, so that
        they fail alone.

        Raises:
            sqlalchemy.exc.IntegrityError: the operation broke a constraint (nothing of it,
                nor the event, is written).
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        at = self.clock()

        def write(conn: Connection) -> tuple[_T, Entry]:
            result = operation(conn)
            (entry,) = self._append(conn, [(at, event)])
            return result, entry

        return await self.writes.submit(write)

    async def record_behind(self, event: Event) -> None:
        """Append an event without waiting for it to be written: it is written within
        ``linger`` seconds, with the others of that moment, in one transaction. A write
        that fails is tried again with the next ones (and logged); :meth:`flush` writes
        what waits. While ``backlog`` entries wait, this waits for its own entry like
        :meth:`record`, so that a log that cannot keep up holds its callers back instead
        of growing without end.

        Raises:
            sqlalchemy.exc.OperationalError: only while the backlog is full, as :meth:`record`.
        """
        if len(self._queue) + self._unwritten >= self.backlog:
            await self.record(event)
            return
        self._queue.append((self.clock(), event, None))
        self._schedule(soon=False)

    def _schedule(self, *, soon: bool, delay: float | None = None) -> None:
        if self._flush_handle is not None:
            if self._flush_soon or not soon:
                return
            self._flush_handle.cancel()  # a caller waits: the lingering flush is due now
        loop = asyncio.get_running_loop()
        self._flush_soon = soon
        if soon:
            self._flush_handle = loop.call_soon(self._flush)
        else:
            self._flush_handle = loop.call_later(self.linger if delay is None else delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        batch, self._queue = self._queue, []
        if not batch:
            return
        items = [(at, event) for at, event, _ in batch]
        self._unwritten += len(batch)

        async def write() -> None:
            try:
                chained = await self.writes.submit(lambda conn: self._append(conn, items))
            except Exception as exc:  # noqa: BLE001 - handed to every caller, or kept to try again
                self._failed(batch, exc)
                return
            finally:
                self._unwritten -= len(batch)
            for (_, _, future), entry in zip(batch, chained, strict=True):
                if future is not None and not future.done():
                    future.set_result(entry)

        task = asyncio.ensure_future(write())
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)

    def _failed(self, batch: list[tuple[datetime, Event, asyncio.Future[Entry] | None]], exc: Exception) -> None:
        behind = []
        for item in batch:
            future = item[2]
            if future is None:
                behind.append(item)
            elif not future.done():
                future.set_exception(exc)
        if behind:
            # Kept, ahead of what came since, and tried again a second later.
            log.error("audit_append_failed", waiting=len(behind) + len(self._queue), error=str(exc)[:500])
            self._queue[:0] = behind
            self._schedule(soon=False, delay=max(self.linger, 1.0))

    async def flush(self, *, timeout: float = 10.0) -> None:
        """Write every event recorded so far, behind ones included, and wait until they
        are committed (called before the database closes), for at most ``timeout``
        seconds: a database that does not answer must not hold a stopping process. What
        still cannot be written, or is not written in time, is logged as lost.
        """
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                while self._writers:
                    await asyncio.wait(set(self._writers))
                await self.writes.flush()
        except TimeoutError:
            # The write goes on in its thread; the caller disposes of the engine once
            # its connection is back (infra.db.dispose_when_idle, itself bounded).
            log.error("audit_flush_timed_out", seconds=timeout, waiting=self._unwritten + len(self._queue))
        if self._queue:
            log.error("audit_entries_not_written", count=len(self._queue))
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None

    def record_now(self, event: Event) -> Entry:
        """Append an event from synchronous code (the command line).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        with self.engine.begin() as conn:
            return self._append(conn, [(self.clock(), event)])[0]

    def _seal(self, conn: Connection) -> Checkpoint | None:
        if self.sealer is None:
            return None
        # Touching the head first takes the lock, as an append does.
        seq, last_hash, sealed_seq = conn.execute(_LOCK_HEAD).one()
        if seq == 0 or sealed_seq == seq:
            return None
        return self._seal_entry(conn, seq, last_hash, self.sealer())

    async def seal(self) -> Checkpoint | None:
        """Seal the chain up to its last entry, unless it is sealed there already.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        result: Checkpoint | None = await self.writes.submit(self._seal)
        return result

    def find(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        other_than: str | None = None,
        before: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Entry]:
        """The newest entries first, optionally of one subject, by one actor or by anyone
        but ``other_than``, below ``before``, skipping the first ``offset``.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        query = select(entries).order_by(entries.c.seq.desc()).offset(offset).limit(limit)
        if subject is not None:
            query = query.where(entries.c.subject == subject)
        if actor is not None:
            query = query.where(entries.c.actor == actor)
        if other_than is not None:
            query = query.where(entries.c.actor != other_than)
        if before is not None:
            query = query.where(entries.c.seq < before)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, or None before the first.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(checkpoints).order_by(checkpoints.c.seq.desc()).limit(1)).first()
        return None if row is None else Checkpoint(row.seq, row.hash, as_utc(row.at), row.jws)

    def _all_entries(self, upto: int, chunk: int = 5000) -> Iterator[Entry]:
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(entries)
                    .where(entries.c.seq > after, entries.c.seq <= upto)
                    .order_by(entries.c.seq)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            after = rows[-1].seq

    def _head_and_checkpoints(self, attempts: int = 5) -> tuple[Head | None, list[Checkpoint]]:
        """The head (None if its row is gone) and every checkpoint, as of one moment. On a
        running log a seal between the two reads would look like a checkpoint deleted
        behind the head's back, so they are read again until the head's sealed number
        holds still around them."""
        tip: Head | None = None
        sealed: list[Checkpoint] = []
        for _ in range(attempts):
            with self.engine.connect() as conn:
                before = conn.execute(select(head.c.sealed_seq).where(head.c.id == 1)).scalar()
                sealed = [
                    Checkpoint(row.seq, row.hash, as_utc(row.at), row.jws)
                    for row in conn.execute(select(checkpoints).order_by(checkpoints.c.seq))
                ]
                row = conn.execute(select(head).where(head.c.id == 1)).one_or_none()
            tip = None if row is None else Head(row.seq, row.hash, row.sealed_seq)
            if tip is None or tip.sealed_seq == before:
                break
        return tip, sealed

    def verify(
        self, keyring: Keyring, *, cadence: Cadence | None = None, witnessed: Iterable[Checkpoint] = ()
    ) -> ChainReport:
        """Check the whole chain up to the head (streamed, in chunks), its checkpoints and
        the head row; a sealed log against its ``cadence``, and against the checkpoints of
        it that peers kept (``witnessed``). See :func:`credit.audit.verify_chain`. Entries
        appended while it reads are left for the next check.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        tip, sealed = self._head_and_checkpoints()
        if tip is None:
            return ChainReport(0, len(sealed), 1, "the head row is missing (deleted)")
        return verify_chain(self._all_entries(tip.seq), sealed, keyring, cadence=cadence, head=tip, witnessed=witnessed)


class Kept(enum.StrEnum):
    """What a peer's published checkpoint told, against those kept of it before."""

    NEW = "new"  # not seen before, and the newest
    KNOWN = "known"  # seen before, and still the newest
    BEHIND = "behind"  # older than the newest kept: the peer's log went back (cut, or restored)
    CONFLICT = "conflict"  # another hash for a number kept before: the peer's log was rewritten


class PeerCheckpoints:
    """The checkpoints this gateway saw its trusted peers publish: the copies that a
    peer's history, rewritten or cut later, would no longer match. Checked by
    ``jjj audit verify --peer`` against the peer's own log."""

    def __init__(self, engine: Engine, *, writes: GroupCommit | None = None) -> None:
        self.engine = engine
        self.writes = writes or GroupCommit(engine)

    @staticmethod
    def _keep(conn: Connection, issuer: str, checkpoint: Checkpoint, now: datetime) -> Kept:
        of_issuer = peer_checkpoints.c.issuer == issuer
        same = conn.execute(
            select(peer_checkpoints.c.hash).where(of_issuer, peer_checkpoints.c.seq == checkpoint.seq)
        ).scalar()
        newest = conn.execute(select(func.max(peer_checkpoints.c.seq)).where(of_issuer)).scalar() or 0
        if same is not None and same != checkpoint.hash:
            return Kept.CONFLICT  # the first copy stays: it is the evidence
        if same is None:
            conn.execute(
                insert(peer_checkpoints).values(
                    issuer=issuer,
                    seq=checkpoint.seq,
                    hash=checkpoint.hash,
                    at=checkpoint.at,
                    jws=checkpoint.jws,
                    kept_at=now,
                )
            )
        if checkpoint.seq < newest:
            return Kept.BEHIND
        return Kept.KNOWN if same is not None else Kept.NEW

    async def keep(self, issuer: str, checkpoint: Checkpoint) -> Kept:
        """Keep a checkpoint ``issuer`` published (its signature checked by the caller),
        unless kept already; says how it compares with those kept before.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        now = datetime.now(UTC)
        kept: Kept = await self.writes.submit(lambda conn: self._keep(conn, issuer, checkpoint, now))
        return kept

    def kept(self, issuer: str | None = None) -> list[tuple[str, Checkpoint]]:
        """The checkpoints kept, of one peer or of all, as (issuer, checkpoint), oldest first.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read (or has no such table).
        """
        query = select(peer_checkpoints).order_by(peer_checkpoints.c.issuer, peer_checkpoints.c.seq)
        if issuer is not None:
            query = query.where(peer_checkpoints.c.issuer == issuer)
        with self.engine.connect() as conn:
            return [(row.issuer, Checkpoint(row.seq, row.hash, as_utc(row.at), row.jws)) for row in conn.execute(query)]
