"""Pages speak Beijing time in the Chinese date format, never UTC or ISO 8601."""

from __future__ import annotations

import re
from typing import Any

from tests.gateway.conftest import TODAY, issue_on

ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
ISO_DAY = re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])")


def _visible(page: str) -> str:
    """The text a reader sees: tags, attributes and scripts left out."""
    return re.sub(r"<[^>]+>", " ", page)


async def test_report_history_and_verify_pages_show_beijing_time(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
    assert status == 201
    cookie = {"Cookie": f"jjj_session={token}"}
    pages = {
        "report": (await api.call("GET", f"/reports/{body['report_no']}", headers=cookie))[1],
        "history": (await api.call("GET", "/history?view=own", headers=cookie))[1],  # the account's own actions
        "verify": (await api.call("GET", f"/verify?code={body['verification_code']}"))[1],
    }
    for name, page in pages.items():
        text = _visible(page)
        assert not ISO_INSTANT.search(text), (name, ISO_INSTANT.search(text))
        assert "UTC" not in text, name
        assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text), name
    # Issued at 10:00 Beijing time on the application day (the test clock's 02:00 UTC).
    assert f"{TODAY.year}年{TODAY.month}月{TODAY.day}日 10:" in _visible(pages["report"])
    assert not ISO_DAY.search(_visible(pages["report"]).replace(body["report_no"], ""))
    assert "北京时间" in _visible(pages["history"])
