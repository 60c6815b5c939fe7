"""The jjj command as an operator runs it: messages and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.nodes.builders import ACME
from tests.nodes.test_ingest import GOOD, HEADER


def jjj(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jjj", *args], capture_output=True, text=True, timeout=120)


def test_ingest_exit_codes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    good = tmp_path / "good.csv"
    good.write_text("\n".join([HEADER, *GOOD]) + "\n", encoding="utf-8")
    done = jjj("ingest", "--region", "tianjin", "--db", db, str(good))
    assert done.returncode == 0, done.stderr
    assert "3 added" in done.stdout

    again = jjj("ingest", "--region", "tianjin", "--db", db, str(good))
    assert again.returncode == 0 and "0 added" in again.stdout and "3 unchanged" in again.stdout

    partial = tmp_path / "partial.csv"
    partial.write_text(
        f"{HEADER}\n{GOOD[0]}\n坏,{ACME[:-1]}X,D1,罚款,x,2024-03-15,,市场监管委,市场监管,,\n", encoding="utf-8"
    )
    result = jjj("ingest", "--region", "tianjin", "--db", db, str(partial))
    assert result.returncode == 3
    assert "line 3" in result.stderr and "check character" in result.stderr
    assert (tmp_path / "partial.csv.rejects.csv").exists()

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    result = jjj("ingest", "--region", "tianjin", "--db", db, str(broken))
    assert result.returncode == 2
    assert "not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_refused_with_a_message(tmp_path: Path) -> None:
    result = jjj("ingest", "--region", "shanghai", "--db", "sqlite:///x.db", "f.csv")
    assert result.returncode == 2 and "unknown region" in result.stderr
    result = jjj("seed", "--region", "hebei", "--db", "mysql://nobody@localhost/x", "--subjects", "10")
    assert result.returncode == 2 and "unsupported database" in result.stderr
    result = jjj("seed", "--region", "hebei", "--subjects", "10")
    assert result.returncode == 2 and "exactly one of --db or --csv" in result.stderr
    result = jjj(
        "node",
        "--region",
        "hebei",
        "--db",
        f"sqlite:///{tmp_path}/n.db",
        "--listen",
        "256.1.1.1:99999",
        "--allow-unasserted",
    )
    assert result.returncode == 1 and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_is_deterministic_and_reingestable(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (first, second):
        done = jjj("seed", "--region", "hebei", "--subjects", "2000", "--today", "2025-06-16", "--csv", str(path))
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    db = f"sqlite:///{tmp_path / 'n.db'}"
    loaded = jjj("ingest", "--region", "hebei", "--db", db, str(first))
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    seeded = jjj("seed", "--region", "hebei", "--subjects", "2000", "--today", "2025-06-16", "--db", db)
    assert seeded.returncode == 0
    assert "0 records added, 0 new versions" in seeded.stdout


def test_accounts_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"

    def accounts(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jjj", "accounts", *args, "--db", db],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = accounts("acme", "--role", "enterprise", "--subject", "91350100M000100Y43", password="a-long-enough-secret")
    assert done.returncode == 0 and "saved" in done.stdout
    assert accounts("acme", "--role", "enterprise", password="a-long-enough-secret").returncode == 2
    assert accounts("acme", "--role", "boss", password="a-long-enough-secret").returncode == 2
    short = accounts("acme", "--role", "admin", password="short")
    assert short.returncode == 2 and "12 characters" in short.stderr

    from gateway.registry import Registry

    registry = Registry.open(db)
    try:
        import asyncio

        account = asyncio.run(registry.account("acme"))
    finally:
        registry.close()
    assert account is not None and account.subject_id == "91350100M000100Y43"
    assert account.password_hash.startswith("$argon2id$")
