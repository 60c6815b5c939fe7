"""Key rotation on disk and `jjj verify`, as an operator and a bank would use them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from credit.document import FORMAT
from credit.errors import FailedPrecondition
from credit.signing import sign, verify
from gateway.access.keys import KeyStore

DOCUMENT = {
    "format": FORMAT,
    "report_no": "JJJ-20250616-ABCDEFGHJK",
    "subject": {"id": "91350100M000100Y43"},
    "verdict": "clean",
}


def test_rotation_keeps_every_key_published(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    with pytest.raises(FailedPrecondition):
        store.current()
    first = store.ensure()
    assert store.ensure().kid == first.kid
    old_report = sign(DOCUMENT, first)
    second = store.rotate()
    assert store.current().kid == second.kid != first.kid
    ring = store.keyring()
    assert len(ring) == 2
    assert verify(old_report, ring) == verify(sign(DOCUMENT, second), ring) == DOCUMENT
    mode = (tmp_path / "keys" / f"{second.kid}.pem").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def jjj(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jjj", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_keys_and_verify_commands(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    rotated = jjj("keys", "rotate", "--dir", str(keys), cwd=tmp_path)
    assert rotated.returncode == 0 and "new signing key" in rotated.stdout
    jwks = jjj("keys", "jwks", "--dir", str(keys), cwd=tmp_path)
    (tmp_path / "jwks.json").write_text(jwks.stdout, encoding="utf-8")
    assert len(json.loads(jwks.stdout)["keys"]) == 1

    report = tmp_path / "report.jws"
    report.write_text(sign(DOCUMENT, KeyStore(keys).current()), encoding="utf-8")
    good = jjj("verify", str(report), "--jwks", str(tmp_path / "jwks.json"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "GENUINE" in good.stdout and "JJJ-20250616-ABCDEFGHJK" in good.stdout

    token = report.read_text(encoding="utf-8")
    header, payload, signature = token.split(".")
    report.write_text(".".join([header, payload, signature[:-3] + ("AAA" if signature[-3:] != "AAA" else "BBB")]))
    bad = jjj("verify", str(report), "--jwks", str(tmp_path / "jwks.json"), cwd=tmp_path)
    assert bad.returncode == 1 and "NOT GENUINE" in bad.stderr

    missing = jjj("verify", str(report), "--jwks", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read the JWKS" in missing.stderr
