"""What the project creates is its owner's alone: files 0600, directories 0700."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from nodes.db import migrate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def jjj(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jjj", *args], capture_output=True, text=True, timeout=120)


def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "node.db"
    migrate(f"sqlite:///{path}")
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    for journal in path.parent.glob("node.db-*"):
        assert mode(journal) == 0o600, journal


def test_the_command_creates_private_files(tmp_path: Path) -> None:
    done = jjj("seed", "--region", "tianjin", "--db", f"sqlite:///{tmp_path / 'seeded' / 'n.db'}", "--subjects", "5")
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "seeded") == 0o700 and mode(tmp_path / "seeded" / "n.db") == 0o600

    done = jjj("certs", "init", str(tmp_path / "certs"))
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "certs") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "certs").iterdir()), [
        (p.name, oct(mode(p))) for p in (tmp_path / "certs").iterdir()
    ]

    done = jjj("keys", "rotate", "--dir", str(tmp_path / "keys"))
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "keys") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "keys").iterdir())
