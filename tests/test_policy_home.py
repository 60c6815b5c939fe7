"""Every role rule lives in credit/policy.py: nothing else compares roles."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLE_COMPARISON = re.compile(
    r"""role(\.value)?\s*(is|==|!=|in|not\s+in)\s|(is|==|!=)\s*Role\.|role\.value\s*==|["'](admin|agency|enterprise|person|third_party)["']\s*(==|in)"""
)


def test_no_role_is_compared_outside_the_policy_module() -> None:
    found = []
    for folder in ("gateway", "nodes", "federation", "infra", "jjj", "credit"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".html") or path == ROOT / "credit" / "policy.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if ROLE_COMPARISON.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_scan_sees_a_role_comparison() -> None:
    for line in (
        "if who.role is Role.ADMIN:",
        "if principal.role in (Role.AGENCY,)",
        '{% if who.role.value == "admin" %}',
    ):
        assert ROLE_COMPARISON.search(line), line
