"""The audit log's verifier says what it lacks instead of calling a good log broken."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


async def test_audit_verify_without_keys_says_it_has_none(gateway: Any) -> None:
    api, running, _ = gateway
    await api.login("clean-co", "demo-clean-2024")
    assert running.service is not None
    await running.service.audit.seal()
    await running.registry.writes.flush()
    done = subprocess.run(
        [sys.executable, "-m", "jjj", "audit", "verify", "--db", running.settings.db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--jwks" in done.stderr and "signed checkpoints" in done.stderr and "BROKEN" not in done.stderr
