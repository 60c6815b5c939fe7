"""Where a node keeps its region's register of market entities (市场主体登记信息).

Reading (:class:`RegisterStore`) is asynchronous and serves queries: the subject's entry,
and whether the node holds a register at all (a node without one cannot say that a
subject is not registered). Writing (:class:`RegisterWriter`) is synchronous and bulk,
for ingest and seeding: one transaction per load, keyed by the subject's code. An entry
whose content changed is replaced (the register says who the entity is now; the
records, not the register, keep history), an identical one is left alone, so loading a
file again changes nothing.

Registers are a node's own: they do not travel on the change feed, and a peer's replica
answers without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import polars as pl
import polars_hash as plh
from sqlalchemy import Engine, Table, bindparam, select, update

from credit.regions import Region
from credit.registers import SubjectRegistration
from infra.db import DriverStatement, SqlRunner, dispose_when_idle
from nodes.models import RegistrationRow
from nodes.store import WriteCounts, in_values

registrations: Table = RegistrationRow.__table__  # type: ignore[assignment]

# A checked batch of entries: these text columns (established_on as ISO text or null).
REGISTER_COLUMNS = ("subject_id", "name", "legal_rep", "address", "authority", "established_on", "status")
_LOOKUP_CHUNK = 5000


class RegisterStore(Protocol):
    async def find(self, subject_id: str) -> SubjectRegistration | None:
        """The subject's entry, or None when the register does not know it."""

    async def held(self) -> bool:
        """Whether the node holds a register at all."""


def _entry(region: Region, row: Any) -> SubjectRegistration:
    # The columns of _FIND in order, as SQLAlchemy or the driver gives them.
    subject_id, name, legal_rep, address, authority, established, status = row
    if isinstance(established, str):  # SQLite through the driver
        established = date.fromisoformat(established)
    return SubjectRegistration(
        subject_id=subject_id,
        name=name,
        region=region,
        legal_rep=legal_rep,
        address=address,
        authority=authority,
        established_on=established,
        status=status,
    )


_FIND = select(
    registrations.c.subject_id,
    registrations.c.name,
    registrations.c.legal_rep,
    registrations.c.address,
    registrations.c.authority,
    registrations.c.established_on,
    registrations.c.status,
).where(registrations.c.subject_id == bindparam("subject_id"))
_ANY = select(registrations.c.subject_id).limit(1)


class SqlRegisterStore:
    """The register in SQLite or PostgreSQL; point reads, inline on SQLite."""

    def __init__(self, engine: Engine, *, region: Region, threads: int = 2) -> None:
        self._sql = SqlRunner(engine, name=f"register-{region.value}", threads=threads, autocommit_reads=True)
        self.engine = self._sql.reader
        self.region = region
        self._held: tuple[float, bool] = (0.0, False)
        self._find = DriverStatement(_FIND, self.engine.dialect)

    def close(self) -> None:
        """Stop the worker threads and close the engine's connections."""
        self._sql.close()
        dispose_when_idle(self.engine)

    async def find(self, subject_id: str) -> SubjectRegistration | None:
        # Through the driver, as the record store's one-subject lookup.
        rows = await self._sql.with_driver(lambda driver: self._find.rows(driver, subject_id=subject_id), small=True)
        return _entry(self.region, rows[0]) if rows else None

    async def held(self) -> bool:
        # Looked at most once a second: it changes only when a register is first loaded.
        checked, value = self._held
        if value or time.monotonic() - checked < 1.0:
            return value
        value = await self._sql.with_connection(lambda conn: conn.execute(_ANY).first() is not None, small=True)
        self._held = (time.monotonic(), value)
        return value


class MemoryRegisterStore:
    """The in-memory twin, for tests and tools."""

    def __init__(self, entries: Iterable[SubjectRegistration] = ()) -> None:
        self.entries = {entry.subject_id: entry for entry in entries}

    async def find(self, subject_id: str) -> SubjectRegistration | None:
        return self.entries.get(subject_id)

    async def held(self) -> bool:
        return bool(self.entries)


def frame_of(entries: Sequence[SubjectRegistration]) -> pl.DataFrame:
    """Entries as a batch the writer takes (seeding and tests build them this way).

    Raises nothing.
    """
    return pl.DataFrame(
        {
            "subject_id": [e.subject_id for e in entries],
            "name": [e.name for e in entries],
            "legal_rep": [e.legal_rep for e in entries],
            "address": [e.address for e in entries],
            "authority": [e.authority for e in entries],
            "established_on": [e.established_on.isoformat() if e.established_on else None for e in entries],
            "status": [e.status for e in entries],
        },
        schema=dict.fromkeys(REGISTER_COLUMNS, pl.String),
    )


@dataclass(slots=True)
class RegisterCounts(WriteCounts):
    repeated: int = 0  # rows of a batch that a later row for the same subject replaced


class RegisterWriter:
    """Bulk upsert of register entries over a synchronous engine; one transaction per load."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(
        self,
        batches: Iterable[pl.DataFrame],
        *,
        source: str,
        dry_run: bool = False,
        now: datetime | None = None,
        before_commit: Callable[[], None] = lambda: None,
    ) -> RegisterCounts:
        """Store every batch (frames of :data:`REGISTER_COLUMNS`) in one transaction:
        new entries added, changed ones replaced, identical ones left; all or nothing.
        With ``dry_run`` everything is compared and counted, and nothing stored.
        ``before_commit`` runs once every batch is written, inside the transaction (an
        error there stores nothing).

        Raises:
            Whatever the database raises; nothing was stored.
        """
        stamp = now or datetime.now(UTC)
        totals = RegisterCounts()
        with self.engine.connect() as conn, conn.begin() as transaction:
            for batch in batches:
                self._write(conn, batch, source=source, now=stamp, totals=totals)
            before_commit()
            if dry_run:
                transaction.rollback()
        return totals

    def _write(self, conn: Any, batch: pl.DataFrame, *, source: str, now: datetime, totals: RegisterCounts) -> None:
        if batch.height == 0:
            return
        unique = batch.unique(subset="subject_id", keep="last", maintain_order=True)
        totals.repeated += batch.height - unique.height
        text = plh.concat_str([pl.col(c).fill_null("") for c in REGISTER_COLUMNS[1:]], separator="\x1f")
        rows = unique.with_columns(text.chash.sha2_256().alias("content_hash"))
        ids = rows["subject_id"].to_list()
        stored: dict[str, str] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            query = select(registrations.c.subject_id, registrations.c.content_hash).where(
                in_values(registrations.c.subject_id, chunk, conn.dialect.name)
            )
            stored.update((r.subject_id, r.content_hash) for r in conn.execute(query))
        inserts: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for row in rows.iter_rows(named=True):
            known = stored.get(row["subject_id"])
            if known == row["content_hash"]:
                totals.unchanged += 1
                continue
            values = {
                **row,
                "established_on": date.fromisoformat(row["established_on"]) if row["established_on"] else None,
                "source": source,
                "loaded_at": now,
            }
            if known is None:
                inserts.append(values)
            else:
                changes.append({f"v_{k}": v for k, v in values.items()})
        if inserts:
            conn.execute(registrations.insert(), inserts)
            totals.added += len(inserts)
        if changes:
            statement = (
                update(registrations)
                .where(registrations.c.subject_id == bindparam("v_subject_id"))
                .values(
                    {c: bindparam(f"v_{c}") for c in (*REGISTER_COLUMNS[1:], "content_hash", "source", "loaded_at")}
                )
            )
            conn.execute(statement, changes)
            totals.changed += len(changes)
