"""The audit log in a database: the gateway's log of every access, and a node's log of
the on-behalf-of assertions it served. The chain itself is :mod:`credit.audit`.

Three tables, created by each side's migrations: ``audit_entries`` (append-only),
``audit_checkpoints`` (signed seals) and ``audit_head`` (one row: the last number and
hash). Appending updates the head row first, which takes the write lock on SQLite and
the row lock on PostgreSQL, so several processes on one database still build a single
chain. Appends go through a :class:`~nodes.db.GroupCommit`: under load many entries
share one commit, and a caller is answered only once its entry is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

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
    insert,
    select,
    update,
)

from credit.audit import GENESIS, ChainReport, Checkpoint, Entry, Event, chain, seal, verify_chain
from credit.signing import Keyring, SigningKey
from nodes.db import GroupCommit, as_utc

log = structlog.get_logger("jjj.audit")

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


def create_audit_tables(op: Any) -> None:
    """Create the three tables from an Alembic migration (``op``)."""
    op.create_table("audit_entries", *_entry_columns())
    op.create_table("audit_checkpoints", *_checkpoint_columns())
    op.create_table("audit_head", *_head_columns())
    op.create_index("ix_audit_subject", "audit_entries", ["subject", "seq"])
    op.create_index("ix_audit_actor", "audit_entries", ["actor", "seq"])
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS, "sealed_seq": 0}])


# Built once (building a statement costs more than running it on SQLite).
_ADVANCE = (
    update(head)
    .where(head.c.id == 1)
    .values(seq=head.c.seq + bindparam("count", type_=Integer))
    .returning(head.c.seq, head.c.hash)
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
    node's audit key); without one the chain is kept unsealed. A checkpoint is written
    with every ``seal_every``-th entry and whenever :meth:`seal` is called.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        writes: GroupCommit | None = None,
        sealer: Callable[[], SigningKey] | None = None,
        seal_every: int = 1000,
    ) -> None:
        self.engine = engine
        self.writes = writes or GroupCommit(engine)
        self.sealer = sealer
        self.seal_every = seal_every
        self._queue: list[tuple[datetime, Event, asyncio.Future[Entry]]] = []
        self._flush_scheduled = False
        self._writers: set[asyncio.Future[None]] = set()

    def _append(self, conn: Connection, items: list[tuple[datetime, Event]]) -> list[Entry]:
        # Advancing the head first takes the lock (see the module's docstring); the
        # entries then follow it in order, in one statement.
        last, prev = conn.execute(_ADVANCE, {"count": len(items)}).one()
        chained = []
        for seq, (at, event) in enumerate(items, start=last - len(items) + 1):
            entry = chain(prev, seq, at, event)
            chained.append(entry)
            prev = entry.hash
        conn.execute(_INSERT_ENTRY, [{name: getattr(e, name) for name in Entry.__slots__} for e in chained])
        tip = chained[-1]
        if self.sealer is not None and tip.seq // self.seal_every > (tip.seq - len(items)) // self.seal_every:
            self._write_checkpoint(conn, seal(tip, self.sealer()))
            conn.execute(_SET_HASH_SEALED, {"new_hash": tip.hash, "new_sealed": tip.seq})
        else:
            conn.execute(_SET_HASH, {"new_hash": tip.hash})
        return chained

    @staticmethod
    def _write_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
        conn.execute(
            _INSERT_CHECKPOINT,
            {"seq": checkpoint.seq, "hash": checkpoint.hash, "at": checkpoint.at, "jws": checkpoint.jws},
        )

    async def record(self, event: Event) -> Entry:
        """Append an event; returns its entry once committed. Events recorded together
        are appended by one operation of the shared writer.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._queue.append((datetime.now(UTC), event, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        self._flush_scheduled = False
        items = [(at, event) for at, event, _ in batch]

        async def write() -> None:
            try:
                chained = await self.writes.submit(lambda conn: self._append(conn, items))
            except Exception as exc:  # noqa: BLE001 - handed to every caller
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for (_, _, future), entry in zip(batch, chained, strict=True):
                if not future.done():
                    future.set_result(entry)

        task = asyncio.ensure_future(write())
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)

    def record_now(self, event: Event) -> Entry:
        """Append an event from synchronous code (the command line).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        with self.engine.begin() as conn:
            return self._append(conn, [(datetime.now(UTC), event)])[0]

    def _seal(self, conn: Connection) -> Checkpoint | None:
        if self.sealer is None:
            return None
        # Updating the head first takes the lock, as an append does.
        seq, last_hash = conn.execute(
            update(head).where(head.c.id == 1).values(sealed_seq=head.c.seq).returning(head.c.seq, head.c.hash)
        ).one()
        last = conn.execute(select(checkpoints.c.seq).order_by(checkpoints.c.seq.desc()).limit(1)).scalar()
        if seq == 0 or last == seq:
            return None
        entry = _entry(conn.execute(select(entries).where(entries.c.seq == seq)).one())
        if entry.hash != last_hash:
            # Never seal what does not match the head: leave it to `jjj audit verify`.
            log.error("audit_head_mismatch", seq=seq)
            return None
        checkpoint = seal(entry, self.sealer())
        self._write_checkpoint(conn, checkpoint)
        return checkpoint

    async def seal(self) -> Checkpoint | None:
        """Seal the chain up to its last entry, unless it is sealed there already.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        result: Checkpoint | None = await self.writes.submit(self._seal)
        return result

    def find(
        self, *, subject: str | None = None, actor: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[Entry]:
        """The newest entries first, optionally of one subject or one actor, below ``before``.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        query = select(entries).order_by(entries.c.seq.desc()).limit(limit)
        if subject is not None:
            query = query.where(entries.c.subject == subject)
        if actor is not None:
            query = query.where(entries.c.actor == actor)
        if before is not None:
            query = query.where(entries.c.seq < before)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def _all_entries(self, chunk: int = 5000) -> Iterator[Entry]:
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(entries).where(entries.c.seq > after).order_by(entries.c.seq).limit(chunk)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            after = rows[-1].seq

    def _all_checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            return [
                Checkpoint(row.seq, row.hash, as_utc(row.at), row.jws)
                for row in conn.execute(select(checkpoints).order_by(checkpoints.c.seq))
            ]

    def verify(self, keyring: Keyring) -> ChainReport:
        """Check the whole chain and its checkpoints (streamed, in chunks).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        report = verify_chain(self._all_entries(), self._all_checkpoints(), keyring)
        if report.intact:
            with self.engine.connect() as conn:
                tip = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
            if tip.seq != report.entries:
                return ChainReport(
                    report.entries,
                    report.checkpoints,
                    report.entries + 1,
                    f"entries from {report.entries + 1} are missing (the head says {tip.seq})",
                )
        return report
