"""The smaller findings, each with its test: a preview confirms once, attachment names
cannot disguise themselves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nodes.objections import check_attachment

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TERMS = {"grantee": "bank", "purpose": "融资信贷", "days": 30, "max_uses": 3}


async def test_a_preview_confirms_once(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", token, json=TERMS)
    assert status == 200, preview
    confirm = {"preview": preview["preview"], "confirm": True}
    results = await asyncio.gather(*(api.call("POST", "/api/v1/grants", token, json=confirm) for _ in range(4)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(201) == 1 and statuses.count(409) + statuses.count(412) == 3, statuses
    status, listed, _ = await api.call("GET", "/api/v1/grants", token)
    assert len(listed["grants"]) == 1


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("invoice\u202efdp.exe.pdf", "invoice_fdp.exe.pdf"),  # right-to-left override
        ("a\u2066b\u2069.pdf", "a_b_.pdf"),  # isolates
        ("line\u2028break.pdf", "line_break.pdf"),
        ("zero\u200bwidth.pdf", "zero_width.pdf"),
        ("tab\tand\x7fdel.pdf", "tab_and_del.pdf"),
        ("正常的文件名.pdf", "正常的文件名.pdf"),
    ],
)
def test_attachment_names_cannot_disguise_themselves(given: str, shown: str) -> None:
    assert check_attachment(given, PDF).filename == shown
