"""Ingest benchmark: a national-standard 行政处罚 file (30 columns, no 领域 column) loaded
end to end — read, every row checked, domains worked out from the authorities, records
hashed, stored in one transaction — into SQLite and PostgreSQL, with peak memory.

    python -m bench.ingest --rows 1000000 --write docs/BENCHMARKS.md

Each run loads into an empty database in a fresh process (so the peak memory is the
load's own) and fails loudly when any row is rejected or the stored count is wrong.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from bench.node import _pg_available, machine, pg_schema, write_section

TODAY = date(2025, 6, 16)
TARGETS = {"SQLite": "≥ 150 000 rows/s", "PostgreSQL": "≥ 250 000 rows/s"}


def make_file(work: Path, rows: int) -> Path:
    from credit.regions import Region
    from nodes.seed import generate, write_national_csv

    path = work / f"national-{rows}.csv"
    if not path.exists():
        # Seeded subjects hold about 0.38 penalties each (most have none): seed enough.
        written = write_national_csv(generate(Region.TIANJIN, subjects=int(rows * 2.7), today=TODAY), path)
        print(f"generated {written:,} rows in {path}", flush=True)
        if written < rows * 0.95:
            path.unlink()
            raise SystemExit(f"generated only {written:,} rows of the {rows:,} asked for")
    return path


def load_once(db: str, path: Path) -> dict[str, float]:
    """One load in this process: rows, seconds, peak RSS."""
    from sqlalchemy import func, select

    from credit.catalogue import catalogue
    from credit.regions import Region
    from nodes.db import migrate, sync_engine
    from nodes.ingest import RowRules, ingest_file
    from nodes.store import records

    migrate(db)
    engine = sync_engine(db)
    try:
        started = time.perf_counter()
        report = ingest_file(path, engine=engine, rules=RowRules(catalogue(Region.TIANJIN), today=TODAY))
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(records)).scalar()
    finally:
        engine.dispose()
    if report.rejects or stored != report.counts.added or report.counts.added == 0:
        raise SystemExit(f"broken run: {len(report.rejects)} rejects ({report.rejects[:3]}), {stored} stored")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": report.rows_read, "seconds": elapsed, "peak_mb": peak_mb}


def run_child(db: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--child", db, str(path)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@contextmanager
def sqlite_db(work: Path) -> Iterator[str]:
    path = work / "ingest.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    yield f"sqlite:///{path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", default="var/bench-ingest")
    parser.add_argument("--write", help="write the figures into this Markdown file")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(load_once(args.child[0], Path(args.child[1]))))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = make_file(work, args.rows)
    small = make_file(work, max(args.rows // 10, 1000))
    figures: dict[str, str] = {}
    with sqlite_db(work) as db:
        result = run_child(db, path)
    with sqlite_db(work) as db:
        tenth = run_child(db, small)
    figures["SQLite"] = (
        f"{result['rows'] / result['seconds']:,.0f} rows/s ({result['rows']:,.0f} rows in {result['seconds']:.1f} s); "
        f"peak memory {result['peak_mb']:,.0f} MB ({tenth['peak_mb']:,.0f} MB for a tenth of the file)"
    )
    print("SQLite", figures["SQLite"], flush=True)
    if args.no_postgres:
        pass
    elif not _pg_available():
        raise SystemExit("PostgreSQL does not answer on 127.0.0.1:5432 (use --no-postgres to skip it)")
    else:
        with pg_schema("bench_ingest") as db:
            result = run_child(db, path)
        figures["PostgreSQL"] = (
            f"{result['rows'] / result['seconds']:,.0f} rows/s ({result['rows']:,.0f} rows in "
            f"{result['seconds']:.1f} s); peak memory {result['peak_mb']:,.0f} MB"
        )
        print("PostgreSQL", figures["PostgreSQL"], flush=True)
    if args.write:
        rows = "\n".join(f"| {key} ingest | {TARGETS[key]} | {value} |" for key, value in figures.items())
        section = f"""
## Ingest of a national-standard file ({args.rows:,} rows)

`python -m bench.ingest --rows {args.rows} --write docs/BENCHMARKS.md`, run {time.strftime("%Y-%m-%d")} on {machine()}.
A 行政处罚 file in the 2021 national standard's 30 columns with no 领域 column, generated from
`jjj seed` data (UTF-8), loaded by `nodes.ingest.ingest_file` into an empty Tianjin node:
layout recognised, every row checked by the columnar loader (identifier, authority → domain,
dates, procedure), record ids and content hashes computed, stored in one transaction. Each
load runs in its own process; the run fails when any row is rejected or the stored count differs.

| what | target | measured |
|---|---|---|
{rows}
"""
        write_section(Path(args.write), "Ingest of a national-standard file", section)


if __name__ == "__main__":
    main()
