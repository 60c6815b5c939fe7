"""Replication benchmark: how fast a node catches up with a peer's change feed.

    python -m bench.replication [--records 1000000] [--write docs/BENCHMARKS.md]

All on this machine: a Tianjin node over SQLite holding ``--records`` synthetic records
(seeded with ``jjj seed``), and a Beijing node started with ``--peers tianjin=…`` over an
empty database, each in its own process, as they are run for real. The follower is
timed from its start until its replica holds every change the origin stored and knows it
is in step; then single changes are stored at the origin one at a time and timed until
the follower has applied each. Runs: SQLite follower over plain gRPC, the same over
mutual TLS, and a PostgreSQL follower when a server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from bench.node import _pg_available, machine, percentile, pg_schema, write_section
from bench.procs import BenchmarkFailed, Processes, failing_loudly, free_port, grpc_serving, processes, tcp_listening
from credit.catalogue import Scope
from credit.regions import Region
from federation.tls import init_federation
from infra.db import sync_engine
from nodes.db import migrate
from nodes.records import make_draft
from nodes.seed import synthetic_subject
from nodes.store import SqlRecordWriter

ORIGIN, FOLLOWER = Region.TIANJIN, Region.BEIJING
TODAY = date(2026, 11, 20)
ROWS_PER_SUBJECT = 0.427  # records per seeded subject (see bench.node)
TARGET = "1 M changes in ≤ 30 s (SQLite)"


@dataclass
class CatchUp:
    changes: int
    seconds: float  # from the follower's start to in step
    first_applied: float  # from the follower's start to its first applied change

    @property
    def rate(self) -> float:
        return self.changes / self.seconds


def seed(work: Path, records: int) -> tuple[str, int]:
    subjects = int(records / ROWS_PER_SUBJECT)
    db = work / f"{ORIGIN.value}-{subjects}.db"
    if not db.exists():
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable, "-m", "jjj", "seed", "--region", ORIGIN.value, "--db", f"sqlite:///{db}",
                "--subjects", str(subjects), "--today", TODAY.isoformat(),
            ],
            check=True,
        )  # fmt: skip
        print(f"seeded {db} in {time.perf_counter() - started:.1f}s", flush=True)
    return f"sqlite:///{db}", subjects


def _head(origin_db: str) -> int:
    engine = sync_engine(origin_db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT max(seq) FROM records")).scalar() or 0)
    finally:
        engine.dispose()


def _cursor(engine: Engine) -> tuple[int, bool]:
    """(last seq applied, in step) of the follower's replica of the origin."""
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT last_seq, synced_at FROM replica_cursors WHERE origin = :o"), {"o": ORIGIN.value}
            ).first()
    except Exception:  # noqa: BLE001 - not migrated yet, or locked for a moment: ask again
        return 0, False
    return (int(row[0]), row[1] is not None) if row else (0, False)


def _wait(running: Processes, engine: Engine, head: int, timeout: float, *, poll: float = 0.05) -> float:
    """Seconds until the follower has applied ``head`` and is in step.

    Raises:
        BenchmarkFailed: it did not within ``timeout``, or a node exited meanwhile.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        last, synced = _cursor(engine)
        if last >= head and synced:
            return time.perf_counter() - started
        running.check_alive("while the follower caught up")
        time.sleep(poll)
    raise BenchmarkFailed(f"the follower did not reach seq {head} within {timeout:.0f} s")


def run(
    name: str, origin_db: str, follower_db: str, args: argparse.Namespace, tls: list[str] | None = None
) -> tuple[CatchUp, list[float]]:
    head = _head(origin_db)
    origin_tls = follower_tls = []
    if tls is not None:
        certs = Path(tls[0])
        origin_tls = ["--tls-cert", str(certs / "node-tianjin.pem"), "--tls-key", str(certs / "node-tianjin.key")]
        origin_tls += ["--tls-ca", str(certs / "ca.pem")]
        follower_tls = ["--tls-cert", str(certs / "node-beijing.pem"), "--tls-key", str(certs / "node-beijing.key")]
        follower_tls += ["--tls-ca", str(certs / "ca.pem")]
    with processes(Path(args.work) / "logs") as running:
        port = free_port()
        address = f"127.0.0.1:{port}"
        origin = running.start_python(
            "origin-tianjin",
            ["jjj", "node", "--region", ORIGIN.value, "--db", origin_db, "--listen", address, "--allow-unasserted",
             *origin_tls],
            port=port,
        )  # fmt: skip
        # Over mutual TLS only a client with a member's certificate may ask for health:
        # there the origin is ready when it listens (on a port of its own, as always).
        probe = grpc_serving(address) if tls is None else tcp_listening(port)
        asyncio.run(running.wait_ready(origin, probe, timeout=60))
        migrate(follower_db)  # so that the cursor can be watched from the start
        engine = sync_engine(follower_db)
        try:
            return _catch_up_and_follow(
                running, name, origin_db, follower_db, address, follower_tls, engine, head, args
            )
        finally:
            engine.dispose()


def _catch_up_and_follow(
    running: Processes,
    name: str,
    origin_db: str,
    follower_db: str,
    origin: str,
    follower_tls: list[str],
    engine: Engine,
    head: int,
    args: argparse.Namespace,
) -> tuple[CatchUp, list[float]]:
    # Timed from the follower's start: not waited for, its exit is watched instead.
    started = time.perf_counter()
    port = free_port()
    running.start_python(
        "follower-beijing",
        [
            "jjj", "node", "--region", FOLLOWER.value, "--db", follower_db, "--listen", f"127.0.0.1:{port}",
            "--allow-unasserted", "--peers", f"{ORIGIN.value}={origin}", *follower_tls,
        ],
        port=port,
    )  # fmt: skip
    while _cursor(engine)[0] == 0:
        running.check_alive("before the follower applied its first change")
        if time.perf_counter() - started > 120:
            raise BenchmarkFailed("the follower applied nothing within 120 s", running.components[-1])
        time.sleep(0.02)
    first = time.perf_counter() - started
    total = first + _wait(running, engine, head, timeout=1800)
    catch_up = CatchUp(head, total, first)
    print(f"{name}: caught up with {head:,} changes in {total:.1f} s ({catch_up.rate:,.0f}/s)", flush=True)

    # Following: one new record at the origin at a time, until the follower has it.
    writer_engine = sync_engine(origin_db)
    writer = SqlRecordWriter(writer_engine)
    latencies = []
    run_tag = uuid.uuid4().hex[:8]  # new records each run: the origin database is reused
    pause = random.Random(3)
    try:
        for i in range(args.follow_changes):
            subject = synthetic_subject(ORIGIN, 10_000_000 + i)
            draft = make_draft(
                subject_id=subject.id,
                subject_kind=subject.kind,
                subject_name=subject.name,
                domain="market_regulation",
                scope=Scope.ADMINISTRATIVE_PENALTY,
                decision_no=f"津市监罚〔2026〕B{run_tag}-{i:03d}号",
                authority="天津市市场监督管理委员会",
                decided_on=TODAY,
                category="罚款",
                content="基准测试",
            )
            writer.load([[draft]], source="bench:replication", now=datetime.now(UTC))
            stored = time.perf_counter()
            _wait(running, engine, _head(origin_db), timeout=60, poll=0.002)
            latencies.append(time.perf_counter() - stored)
            time.sleep(pause.uniform(0.05, 0.6))  # land anywhere in the origin's poll interval
    finally:
        writer_engine.dispose()
    return catch_up, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--follow-changes", type=int, default=20)
    parser.add_argument("--work", default="var/bench-replication")
    parser.add_argument("--write", help="write the figures into this Markdown file")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-tls", action="store_true")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    origin_db, _ = seed(work, args.records)
    figures: dict[str, str] = {}

    def record(key: str, catch_up: CatchUp, latencies: list[float]) -> None:
        figures[f"{key} catch-up"] = (
            f"{catch_up.changes:,} changes in {catch_up.seconds:.1f} s ({catch_up.rate:,.0f} changes/s; "
            f"first change applied {catch_up.first_applied:.1f} s after the follower started)"
        )
        figures[f"{key} following"] = (
            f"a new change applied at the follower p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms after it was stored ({len(latencies)} changes, one at a time)"
        )
        print(f"{key}: {figures[f'{key} catch-up']}; {figures[f'{key} following']}", flush=True)

    def sqlite_follower(tag: str) -> str:
        path = work / f"follower-{tag}-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}"

    def cleanup(db: str) -> None:
        path = db.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    follower = sqlite_follower("plain")
    try:
        record("SQLite follower", *run("SQLite", origin_db, follower, args))
    finally:
        cleanup(follower)

    if not args.no_tls:
        certs = work / f"certs-{uuid.uuid4().hex[:8]}"
        init_federation(certs)
        follower = sqlite_follower("tls")
        try:
            record("SQLite follower, mutual TLS", *run("SQLite over mTLS", origin_db, follower, args, [str(certs)]))
        finally:
            cleanup(follower)
            shutil.rmtree(certs, ignore_errors=True)

    if not args.no_postgres and _pg_available():
        with pg_schema() as follower:
            record("PostgreSQL follower", *run("PostgreSQL", origin_db, follower, args))

    if args.write:
        write(Path(args.write), figures, args)


TARGETS = {
    "SQLite follower catch-up": TARGET,
    "SQLite follower, mutual TLS catch-up": TARGET,
    "PostgreSQL follower catch-up": "(no target)",
}


def write(path: Path, figures: dict[str, str], args: argparse.Namespace) -> None:
    rows = "\n".join(f"| {key} | {TARGETS.get(key, '')} | {value} |" for key, value in figures.items())
    notes_path = path.with_name("BENCHMARKS-replication-notes.md")
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    section = f"""
## Replication ({args.records:,} records, one peer followed)

`python -m bench.replication --records {args.records} --write docs/BENCHMARKS.md`,
run {time.strftime("%Y-%m-%d")} on {machine()}.
A Tianjin node over SQLite seeded with `jjj seed` (about {ROWS_PER_SUBJECT} records per subject,
some with several versions), and a Beijing node started with `--peers tianjin=…` over an
empty database, in two processes on the same two cores. Catch-up is timed from the
follower's start (process start and migrations included) until its replica holds every
change the origin had stored and the origin has told it that it is in step; following is
timed from storing one new record at the origin until the follower has applied it.

| what | target | measured |
|---|---|---|
{rows}

{notes}"""
    write_section(path, "Replication (", section)


if __name__ == "__main__":
    with failing_loudly():
        main()
