"""Bulk loading of checked record batches (polars frames) in one transaction.

The ingest path hands the writer frames, not rows: each batch's record ids are staged in
a temporary table and joined with the current versions in the database, so deciding what
is new, unchanged or changed is a join and a few column expressions; only the rare rows
that need a decision one by one (a record's history in one file, a decision whose rows
lie in different batches) go through :func:`nodes.store.plan_versions` in Python. New
versions go in as Arrow data: ADBC's SQLite driver on a SQLite file, ``COPY … (FORMAT
csv)`` written by polars on PostgreSQL, ``executemany`` on an in-memory SQLite database.

Versioning is the store's (see :mod:`nodes.store`); in addition, a record whose current
version this same load wrote is not given a second version by a later row of the file:
a row of the same decision (same authority and date) is joined into it, and a row that
only shares its number is a record of its own (:func:`nodes.ingest.rules.second_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from sqlalchemy import Engine, Index
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.schema import CreateIndex, DropIndex

from nodes.store import _COLUMNS, _DEFERRED_INDEXES, _VACUUM_AFTER, WriteCounts, lock_versions, plan_versions, records

# Columns of a checked batch, in Prepared order (see nodes.store.prepare).
FRAME_COLUMNS = (
    "record_id", "content_hash", "subject_id", "subject_kind", "subject_name", "domain", "scope", "decision_no",
    "authority", "decided_on", "category", "content", "procedure", "status", "publicity_until", "removed_on",
)  # fmt: skip
_CURRENT = (
    "SELECT r.record_id, r.version, r.content_hash, r.source, r.ingested_at, r.authority, r.decided_on, r.category, "
    "r.content FROM {ids} i JOIN records r ON r.record_id = i.record_id WHERE r.current"
)
_LOOKUP_INDEX = "uq_records_record_version"
_SEED, _SEED2 = 0x6A6A6A, 0x5EED2  # any fixed seeds: the hashes live only as long as one load
_CURRENT_PG = (
    "SELECT r.record_id, r.version, r.content_hash, r.source, r.ingested_at, r.authority, r.decided_on, r.category, "
    "r.content FROM records r WHERE r.current AND r.record_id IN (SELECT unnest(string_to_array(%s, E'\\x1f')))"
)
_SEPARATOR = "\x1f"
_HITS = {
    "record_id": pl.String, "version": pl.Int64, "hash": pl.String, "source": pl.String, "stamp": pl.String,
    "authority": pl.String, "decided_on": pl.String, "category": pl.String, "content": pl.String,
}  # fmt: skip


class Bulk(Protocol):
    """What the loader needs of a backend inside one transaction."""

    def current(self, ids: pl.Series) -> pl.DataFrame:
        """Current versions of these record ids (columns as in ``_HITS``)."""

    def supersede(self, ids: pl.Series) -> None:
        """Clear the current flag of these records."""

    def append(self, rows: pl.DataFrame) -> None:
        """Insert rows (``records`` columns but seq, in ``_COLUMNS`` order)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) and return its rows."""


class _Seen:
    """Record ids a load has taken, as two independent 64-bit hashes each."""

    def __init__(self) -> None:
        self.first = pl.Series([], dtype=pl.UInt64)
        self.second = pl.Series([], dtype=pl.UInt64)

    def earlier(self, ids: pl.Series) -> pl.Series:
        if self.first.len() == 0:
            return pl.Series([False] * ids.len())
        return ids.hash(_SEED).is_in(self.first.implode()) & ids.hash(_SEED2).is_in(self.second.implode())

    def add(self, ids: pl.Series) -> None:
        self.first = pl.concat([self.first, ids.hash(_SEED)])
        self.second = pl.concat([self.second, ids.hash(_SEED2)])


@dataclass(slots=True)
class _Load:
    source: str
    stamp: str  # ingested_at as the backend stores it
    true: Any
    false: Any


def _stamp_sqlite(now: datetime) -> str:
    return now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class _SqliteAdbc:
    """A SQLite file through ADBC: Arrow batches go in without a Python object per row."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cur = conn.cursor()

    def current(self, ids: pl.Series) -> pl.DataFrame:
        self.cur.adbc_ingest("_load_ids", pl.DataFrame({"record_id": ids}).to_arrow(), mode="replace", temporary=True)
        self.cur.execute(_CURRENT.format(ids="temp._load_ids"))
        frame = pl.from_arrow(self.cur.fetch_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return _hits(frame)

    def supersede(self, ids: pl.Series) -> None:
        self.cur.adbc_ingest("_load_old", pl.DataFrame({"record_id": ids}).to_arrow(), mode="replace", temporary=True)
        self.cur.execute(
            "UPDATE records SET current = 0 WHERE current AND record_id IN (SELECT record_id FROM temp._load_old)"
        )

    def append(self, rows: pl.DataFrame) -> None:
        self.cur.adbc_ingest("records", rows.to_arrow(), mode="append")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, tuple(params) if params else None)
        try:
            return list(self.cur.fetchall())
        except Exception:  # noqa: BLE001 - a statement with no result set
            return []


class _Sqlite:
    """SQLite through SQLAlchemy's connection (an in-memory database, which no second
    connection can see)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _stage(self, name: str, ids: pl.Series) -> None:
        self.conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} (record_id TEXT)")
        self.conn.exec_driver_sql(f"DELETE FROM {name}")
        self.conn.exec_driver_sql(f"INSERT INTO {name} VALUES (?)", [(v,) for v in ids.to_list()])

    def current(self, ids: pl.Series) -> pl.DataFrame:
        self._stage("_load_ids", ids)
        rows = self.conn.exec_driver_sql(_CURRENT.format(ids="temp._load_ids")).fetchall()
        return _hits(pl.DataFrame([tuple(r) for r in rows], schema=list(_HITS), orient="row"))

    def supersede(self, ids: pl.Series) -> None:
        self._stage("_load_old", ids)
        self.conn.exec_driver_sql(
            "UPDATE records SET current = 0 WHERE current AND record_id IN (SELECT record_id FROM temp._load_old)"
        )

    def append(self, rows: pl.DataFrame) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self.conn.exec_driver_sql(f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows.rows())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.conn.exec_driver_sql(sql, tuple(params))
        return [tuple(r) for r in result] if result.returns_rows else []


class _Postgres:
    """PostgreSQL through psycopg's COPY, fed CSV that polars writes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.raw = conn.connection.driver_connection
        conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _load_ids (record_id text) ON COMMIT DROP")

    def _stage(self, ids: pl.Series) -> None:
        with self.raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("TRUNCATE _load_ids")
            with cur.copy("COPY _load_ids (record_id) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(pl.DataFrame({"record_id": ids}).write_csv(include_header=False))

    def current(self, ids: pl.Series) -> pl.DataFrame:
        # The ids as one text parameter, unnested: PostgreSQL probes the record-id index
        # once per id (a temporary table without statistics had it scan the table).
        with self.raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(_CURRENT_PG, (ids.str.join(_SEPARATOR).item(),))
            rows = [
                (r[0], r[1], r[2], r[3], r[4].isoformat(), r[5], r[6].isoformat(), r[7], r[8]) for r in cur.fetchall()
            ]
        return _hits(pl.DataFrame(rows, schema=list(_HITS), orient="row"))

    def supersede(self, ids: pl.Series) -> None:
        self._stage(ids)
        self.conn.exec_driver_sql(
            "UPDATE records SET current = false WHERE current AND record_id IN (SELECT record_id FROM _load_ids)"
        )

    def append(self, rows: pl.DataFrame) -> None:
        with self.raw.cursor() as cur:  # type: ignore[union-attr]
            sql = f"COPY records ({', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
            with cur.copy(sql) as copy:
                copy.write(rows.write_csv(include_header=False))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.conn.exec_driver_sql(sql.replace("?", "%s"), tuple(params))
        return [tuple(r) for r in result] if result.returns_rows else []


def _hits(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.width == 0 or frame.height == 0:
        return pl.DataFrame(schema=_HITS)
    frame.columns = list(_HITS)
    return frame.cast(_HITS)  # type: ignore[arg-type]


def _sqlite_file(engine: Engine) -> str | None:
    url = make_url(str(engine.url.render_as_string(hide_password=False)))
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database))


@contextmanager
def _transaction(engine: Engine) -> Iterator[tuple[Bulk, Callable[[], None], Callable[[], None], str]]:
    """(bulk, commit, rollback, dialect) inside one transaction on the best path."""
    path = _sqlite_file(engine)
    if path is not None:
        import adbc_driver_sqlite.dbapi as adbc

        # Autocommit in the driver: the transaction is ours, begun IMMEDIATE so the write
        # lock is taken at once (as SQLAlchemy's connection would on its first write).
        conn = adbc.connect(path, autocommit=True)
        try:
            cur = conn.cursor()
            for pragma in ("busy_timeout=30000", "synchronous=NORMAL", "cache_size=-65536", "threads=2"):
                cur.execute(f"PRAGMA {pragma}")
            cur.execute("BEGIN IMMEDIATE")

            def commit() -> None:
                cur.execute("COMMIT")

            def rollback() -> None:
                cur.execute("ROLLBACK")

            yield _SqliteAdbc(conn), commit, rollback, "sqlite"
        finally:
            conn.close()
        return
    with engine.connect() as sa:
        transaction = sa.begin()
        lock_versions(sa)
        bulk: Bulk = _Postgres(sa) if sa.dialect.name == "postgresql" else _Sqlite(sa)
        yield bulk, transaction.commit, transaction.rollback, sa.dialect.name


# How rows of one decision in different batches are joined: (stored category, stored
# content, new item) → the item holding both, with its content hash; and the item of a
# second decision sharing a number, under its own id. Given by the ingest rules.
Merge = Callable[[str, str, tuple[Any, ...]], tuple[Any, ...]]
Rekey = Callable[[tuple[Any, ...]], tuple[Any, ...]]


class FrameWriter:
    """Stores checked batches (frames of :data:`FRAME_COLUMNS`, and optionally a boolean
    ``joinable``: the row's id derives from its decision, so a row of the same decision in
    a later batch is joined into it rather than made its next version) in one transaction."""

    def __init__(self, engine: Engine, *, merge: Merge | None = None, rekey: Rekey | None = None) -> None:
        self.engine = engine
        self.merge = merge
        self.rekey = rekey

    def load(
        self,
        frames: Iterable[pl.DataFrame],
        *,
        source: str,
        file_sha256: str = "",
        rejected: Callable[[], int] = lambda: 0,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> WriteCounts:
        """Store every batch in one transaction and log the load; all or nothing. With
        ``dry_run`` everything is done and counted, then rolled back.

        Loading into an empty table builds the secondary indexes once at the end.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, adbc_driver_manager.Error: the database
                failed; nothing was stored.
        """
        started = now or datetime.now(UTC)
        totals = WriteCounts()
        read = 0
        with _transaction(self.engine) as (bulk, commit, rollback, dialect):
            sqlite = dialect == "sqlite"
            load = _Load(
                source,
                _stamp_sqlite(started) if sqlite else started.astimezone(UTC).isoformat(),
                1 if sqlite else True,
                0 if sqlite else False,
            )
            try:
                deferred: list[Index] = []
                empty = not bulk.execute("SELECT seq FROM records LIMIT 1")
                if empty and not dry_run:
                    # Into an empty table every index is built once at the end, the
                    # record-id index too unless a row needs a lookup before then.
                    deferred = [i for i in records.indexes if i.name in (*_DEFERRED_INDEXES, _LOOKUP_INDEX)]
                    for index in deferred:
                        bulk.execute(str(DropIndex(index).compile(dialect=self.engine.dialect)))
                # The ids of every row this load has taken, as two 64-bit hashes (16 bytes
                # a row): a later row of the file with the same id is a decision's next
                # row (joined) or another decision sharing its number. Into an empty
                # table, only such rows can meet a stored record: no other is looked up.
                seen = _Seen()

                def lookups() -> None:
                    for index in [i for i in deferred if i.name == _LOOKUP_INDEX]:
                        bulk.execute(str(CreateIndex(index).compile(dialect=self.engine.dialect)))
                        deferred.remove(index)

                for frame in frames:
                    read += frame.height
                    totals += self._write(bulk, frame, load, seen, lookups, empty=empty)
                    seen.add(frame["record_id"])
                for index in deferred:
                    bulk.execute(str(CreateIndex(index).compile(dialect=self.engine.dialect)))
                finished = datetime.now(UTC)
                stamps = (load.stamp, _stamp_sqlite(finished) if sqlite else finished.isoformat())
                bulk.execute(
                    "INSERT INTO ingests (source, file_sha256, started_at, finished_at, rows_read, rows_added, "
                    "rows_changed, rows_unchanged, rows_rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        source,
                        file_sha256,
                        *stamps,
                        read + rejected(),
                        totals.added,
                        totals.changed,
                        totals.unchanged,
                        rejected(),
                    ),
                )
            except BaseException:
                rollback()
                raise
            if dry_run:
                rollback()
                return totals
            commit()
        if self.engine.dialect.name == "postgresql" and totals.added + totals.changed >= _VACUUM_AFTER:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE) records")
        return totals

    def _write(
        self,
        bulk: Bulk,
        frame: pl.DataFrame,
        load: _Load,
        seen: _Seen,
        lookups: Callable[[], None],
        *,
        empty: bool,
    ) -> WriteCounts:
        counts = WriteCounts()
        if frame.height == 0:
            return counts
        if "joinable" not in frame.columns:
            frame = frame.with_columns(pl.lit(False).alias("joinable"))
        frame = frame.with_columns(seen.earlier(frame["record_id"]).alias("earlier"))
        ids = frame.filter(pl.col("earlier"))["record_id"] if empty else frame["record_id"]
        if ids.len():
            lookups()
            hits = bulk.current(ids)
        else:
            hits = pl.DataFrame(schema=_HITS)
        joined = frame.join(hits.rename({c: f"cur_{c}" for c in _HITS if c != "record_id"}), on="record_id", how="left")
        again = pl.col("earlier") & pl.col("joinable") & pl.col("cur_version").is_not_null()
        single = ~pl.col("record_id").is_duplicated() & ~again
        simple = joined.filter(single)
        hard = joined.filter(~single)

        new = simple.filter(pl.col("cur_version").is_null())
        same = simple.filter(pl.col("cur_hash") == pl.col("content_hash"))
        changed = simple.filter(pl.col("cur_version").is_not_null() & (pl.col("cur_hash") != pl.col("content_hash")))
        counts.added = new.height
        counts.unchanged = same.height
        counts.changed = changed.height
        inserts = [
            new.select(*FRAME_COLUMNS, pl.lit(1, pl.Int64).alias("version")),
            changed.select(*FRAME_COLUMNS, (pl.col("cur_version") + 1).alias("version")),
        ]
        superseded = [changed["record_id"]]
        if hard.height:
            extra, old, hard_counts = self._plan_hard(bulk, hard, load)
            counts += hard_counts
            inserts.append(extra)
            superseded.append(old)
        old_ids = pl.concat(superseded)
        if old_ids.len():
            bulk.supersede(old_ids)
        rows = pl.concat(inserts, how="vertical_relaxed")
        if rows.height:
            last = pl.col("version") == pl.col("version").max().over("record_id")
            current = pl.when(last).then(pl.lit(load.true)).otherwise(pl.lit(load.false)).alias("current")
            rows = rows.select(
                "record_id",
                "version",
                current,
                *FRAME_COLUMNS[2:],
                pl.lit(load.source).alias("source"),
                pl.lit(load.stamp).alias("ingested_at"),
                "content_hash",
            )
            bulk.append(rows)
        return counts

    def _plan_hard(self, bulk: Bulk, hard: pl.DataFrame, load: _Load) -> tuple[pl.DataFrame, pl.Series, WriteCounts]:
        """Rows decided one by one: several rows of one record id in the batch (a
        record's history, in file order), and rows whose record this load already wrote."""
        counts = WriteCounts()
        items: list[tuple[Any, ...]] = []
        current: dict[str, tuple[int, str]] = {}
        for row in hard.iter_rows(named=True):
            item = tuple(row[c] for c in FRAME_COLUMNS)
            if row["cur_version"] is not None:
                again = row["earlier"] and row["joinable"]
                if again and self.merge is not None and self.rekey is not None:
                    if (row["cur_authority"], row["cur_decided_on"]) == (item[8], item[9]):
                        # Another row of a decision an earlier row of this file gave.
                        joined = self.merge(row["cur_category"], row["cur_content"], item)
                        counts.joined += 1
                        ours = row["cur_source"] == load.source and row["cur_stamp"] == load.stamp
                        if not ours:
                            # The earlier row matched the stored version (counted
                            # unchanged); with this row the record changes.
                            counts.unchanged -= 1
                            current.setdefault(row["record_id"], (row["cur_version"], row["cur_hash"]))
                            items.append(joined)
                            continue
                        earlier = bulk.execute(
                            "SELECT content_hash FROM records WHERE record_id = ? AND version = ?",
                            (row["record_id"], row["cur_version"] - 1),
                        )
                        if earlier and earlier[0][0] == joined[1]:
                            # The file holds the record as it was: this load's version of
                            # it goes, and the earlier one is current again.
                            bulk.execute(
                                "DELETE FROM records WHERE record_id = ? AND version = ?",
                                (row["record_id"], row["cur_version"]),
                            )
                            bulk.execute(
                                "UPDATE records SET current = ? WHERE record_id = ? AND version = ?",
                                (load.true, row["record_id"], row["cur_version"] - 1),
                            )
                            counts.changed -= 1
                            counts.unchanged += 1
                            continue
                        bulk.execute(
                            "UPDATE records SET category = ?, content = ?, content_hash = ? "
                            "WHERE record_id = ? AND current",
                            (joined[10], joined[11], joined[1], row["record_id"]),
                        )
                        continue
                    item = self.rekey(item)
                    found = bulk.current(pl.Series([item[0]], dtype=pl.String))
                    if found.height:
                        hit = found.row(0, named=True)
                        current.setdefault(item[0], (hit["version"], hit["hash"]))
                    items.append(item)
                    continue
                current.setdefault(row["record_id"], (row["cur_version"], row["cur_hash"]))
            items.append(item)
        plan = plan_versions(items, current)
        counts += plan.counts
        rows = [(*item, version) for item, version in plan.inserts]
        frame = pl.DataFrame(rows, schema=[*FRAME_COLUMNS, "version"], orient="row").cast(
            {c: pl.String for c in FRAME_COLUMNS}
        )
        frame = frame.with_columns(pl.col("version").cast(pl.Int64))
        return frame, pl.Series(plan.superseded, dtype=pl.String), counts
