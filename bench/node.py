"""Node benchmarks: ingest rate, one-subject query latency, batch throughput.

    python -m bench.node [--records 1000000] [--write docs/BENCHMARKS.md]

Everything runs on this machine: a Tianjin node over SQLite (and PostgreSQL when a server
answers on 127.0.0.1:5432) holding ``--records`` synthetic records, the node in its own
process and the client here, so latency is measured at the gRPC client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from bench.procs import Processes, failing_loudly, free_port, grpc_serving, processes
from credit.catalogue import catalogue
from credit.regions import Region
from infra.db import sync_engine
from nodes.db import migrate
from nodes.ingest import RowRules, ingest_file
from nodes.seed import generate, synthetic_subject, write_csv
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

REGION = Region.TIANJIN
TODAY = date(2026, 11, 20)
# Seeded subjects with records per subject seeded (measured: 0.427 rows per subject).
ROWS_PER_SUBJECT = 0.427
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Results:
    rows: int = 0
    subjects: int = 0
    lines: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: str) -> None:
        self.figures[key] = value
        print(f"{key}: {value}", flush=True)


def _pg_available() -> bool:
    try:
        engine = create_engine(
            PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def make_csv(work: Path, records: int) -> tuple[Path, int]:
    subjects = int(records / ROWS_PER_SUBJECT)
    path = work / f"tianjin-{subjects}.csv"
    if not path.exists():
        started = time.perf_counter()
        rows = write_csv(generate(REGION, subjects=subjects, today=TODAY), path)
        print(f"generated {rows} rows in {time.perf_counter() - started:.1f}s", flush=True)
    return path, subjects


def bench_ingest(db: str, path: Path) -> tuple[int, float]:
    migrate(db)
    engine = sync_engine(db)
    try:
        rules = RowRules(catalogue(REGION), today=TODAY)
        started = time.perf_counter()
        report = ingest_file(path, engine=engine, rules=rules)
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    assert not report.rejects, report.rejects[:3]
    return report.rows_read, elapsed


def start_node(running: Processes, db: str) -> str:
    """Start a node over ``db`` and wait until it serves; returns its address.

    Raises BenchmarkFailed (see ``Processes.wait_ready``).
    """
    port = free_port()
    argv = ["jjj", "node", "--region", REGION.value, "--db", db, "--listen", f"127.0.0.1:{port}", "--allow-unasserted"]
    node = running.start_python("node", argv, port=port)
    asyncio.run(running.wait_ready(node, grpc_serving(f"127.0.0.1:{port}"), timeout=60))
    return f"127.0.0.1:{port}"


async def bench_query(address: str, subjects: int, calls: int) -> list[float]:
    rng = random.Random(7)
    ids = [synthetic_subject(REGION, rng.randrange(subjects)).id for _ in range(calls + 500)]
    options = pb.QueryOptions(profile="tianjin-2023", years=3)
    latencies = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = node_pb2_grpc.RegionalNodeStub(channel)
        for i, subject in enumerate(ids):
            started = time.perf_counter()
            await stub.QuerySubject(pb.QuerySubjectRequest(subject_id=subject, options=options))
            if i >= 500:  # warm-up
                latencies.append(time.perf_counter() - started)
    return latencies


async def bench_floor(address: str, calls: int) -> list[float]:
    """The same client and server answering a health check: what any call costs here."""
    latencies = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for i in range(calls + 500):
            started = time.perf_counter()
            await stub.Check(health_pb2.HealthCheckRequest())
            if i >= 500:
                latencies.append(time.perf_counter() - started)
    return latencies


async def bench_batch(address: str, subjects: int, total: int, chunk: int, concurrency: int) -> float:
    rng = random.Random(11)
    ids = [synthetic_subject(REGION, rng.randrange(subjects)).id for _ in range(total)]
    chunks = [ids[i : i + chunk] for i in range(0, total, chunk)]
    options = pb.QueryOptions(profile="tianjin-2023", years=3)
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    ) as channel:
        stub = node_pb2_grpc.RegionalNodeStub(channel)
        await stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=chunks[0], options=options))  # warm-up
        queue = list(chunks)
        checked = 0

        async def worker() -> None:
            nonlocal checked
            while queue:
                part = queue.pop()
                reply = await stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=part, options=options))
                checked += len(reply.checks)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    assert checked == total
    return total / elapsed


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run_backend(name: str, db: str, path: Path, subjects: int, results: Results, args: argparse.Namespace) -> None:
    rows, elapsed = bench_ingest(db, path)
    results.rows = rows
    results.add(f"{name} ingest", f"{rows / elapsed:,.0f} rows/s ({rows:,} rows in {elapsed:.1f} s)")
    with processes(Path(args.work) / "logs") as running:
        address = start_node(running, db)
        if name == "SQLite":
            floor = asyncio.run(bench_floor(address, args.calls))
            results.add(
                "gRPC round trip, no work (health Check)",
                f"p50 {percentile(floor, 50) * 1000:.2f} ms, p99 {percentile(floor, 99) * 1000:.2f} ms "
                f"({len(floor):,} sequential calls)",
            )
        latencies = asyncio.run(bench_query(address, subjects, args.calls))
        results.add(
            f"{name} query latency",
            f"p50 {percentile(latencies, 50) * 1000:.2f} ms, p99 {percentile(latencies, 99) * 1000:.2f} ms "
            f"({len(latencies):,} sequential calls)",
        )
        for concurrency in (1, 2):
            rate = asyncio.run(bench_batch(address, subjects, args.batch_total, args.chunk, concurrency))
            results.add(
                f"{name} batch ×{concurrency}",
                f"{rate:,.0f} subjects/s ({args.batch_total:,} subjects in chunks of {args.chunk:,}, "
                f"{concurrency} call{'s' if concurrency > 1 else ''} in flight)",
            )
        running.check_alive(f"during the {name} runs")


@contextlib.contextmanager
def pg_schema(prefix: str = "bench") -> Iterator[str]:
    """A PostgreSQL URL whose search path is a fresh schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` into the Markdown file in place of the section whose heading starts
    with ``## heading`` (up to the next ``## ``), or at the end when there is none."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    marker = f"\n## {heading}"
    if marker in text:
        head, _, tail = text.partition(marker)
        rest = tail.split("\n## ", 1)
        text = head + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n" + section
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, grpcio {grpc.__version__}"
    )


TEMPLATE = """# Benchmarks

Figures from `make bench` (`python -m bench.node --records {records} --write docs/BENCHMARKS.md`),
last run {when}.

Machine: {machine}.
The machine is shared and noisy: figures vary by ±20 % between runs.

## Regional node ({records_fmt} records, one node, Tianjin catalogue)

| what | target | measured |
|---|---|---|
{rows}

How each is measured:
- **ingest**: `jjj ingest` path (`nodes.ingest.ingest_file`): CSV in this project's own
  layout generated by `jjj seed --csv`, every row checked by the columnar loader
  (identifier check, domain and scope, dates), content-hashed and versioned, loaded in
  one transaction into an empty database — SQLite through ADBC, PostgreSQL with `COPY`.
- **query latency**: sequential `QuerySubject` calls for random subjects (one in five
  with records) from a grpc.aio client in another process, after 500 warm-up calls.
- **batch**: `CheckSubjects` over {batch_total} random subjects in chunks of {chunk},
  with one and with two calls in flight.

{notes}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--batch-total", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--work", default="var/bench")
    parser.add_argument("--write", help="write the figures into this Markdown file")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path, subjects = make_csv(work, args.records)
    results = Results(subjects=subjects)

    sqlite_db = work / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        run_backend("SQLite", f"sqlite:///{sqlite_db}", path, subjects, results, args)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sqlite_db}{suffix}").unlink(missing_ok=True)

    if not args.no_postgres and _pg_available():
        with pg_schema() as url:
            run_backend("PostgreSQL", url, path, subjects, results, args)

    if args.write:
        write_report(Path(args.write), results, args)


TARGETS = {
    "gRPC round trip, no work (health Check)": "(reference)",
    "SQLite ingest": "≥ 150 000 rows/s",
    "PostgreSQL ingest": "≥ 250 000 rows/s",
    "SQLite query latency": "p99 ≤ 2 ms",
    "PostgreSQL query latency": "p99 ≤ 2 ms",
    "SQLite batch ×1": "≥ 100 000 subjects/s",
    "SQLite batch ×2": "≥ 100 000 subjects/s",
    "PostgreSQL batch ×1": "≥ 100 000 subjects/s",
    "PostgreSQL batch ×2": "≥ 100 000 subjects/s",
}


OTHER_SECTIONS = ("Gateway (", "Batch checks (", "Replication (")


def write_report(path: Path, results: Results, args: argparse.Namespace) -> None:
    rows = "\n".join(f"| {key} | {TARGETS.get(key, '')} | {value} |" for key, value in results.figures.items())
    notes_path = path.with_name("BENCHMARKS-notes.md")
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    # The other benchmarks' sections (gateway, batch checks, replication) stay as they are.
    others = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        starts = [i for i in (old.find(f"\n## {title}") for title in OTHER_SECTIONS) if i >= 0]
        others = old[min(starts) :] if starts else ""
    path.write_text(
        TEMPLATE.format(
            records=args.records,
            records_fmt=f"{results.rows:,}",
            when=time.strftime("%Y-%m-%d"),
            machine=machine(),
            rows=rows,
            batch_total=f"{args.batch_total:,}",
            chunk=f"{args.chunk:,}",
            notes=notes,
        ).rstrip("\n")
        + "\n"
        + others,
        encoding="utf-8",
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    with failing_loudly():
        main()
