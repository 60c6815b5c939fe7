"""我的报告: a subject's account finds the reports it had issued, newest first, a page at a time."""

from __future__ import annotations

import re
from typing import Any

from gateway.portal import pages
from tests.gateway.conftest import TODAY, issue_on


async def test_my_reports_lists_earlier_reports_with_paging(gateway: Any, monkeypatch: Any) -> None:
    api, running, _ = gateway
    monkeypatch.setattr(pages, "RECENT_PER_PAGE", 2)
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    issued = []
    for _ in range(3):
        status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
        assert status == 201
        issued.append(body["report_no"])
    # Another subject's report never shows.
    other = await api.login("clean-co", "demo-clean-2024")
    status, theirs, _ = await api.call("POST", "/api/v1/reports", other, json={"years": 3})
    assert status == 201

    cookie = {"Cookie": f"jjj_session={token}"}
    _, first, _ = await api.call("GET", "/report", headers=cookie)
    _, second, _ = await api.call("GET", "/report?page=2", headers=cookie)
    listed = lambda page: re.findall(r'href="/reports/([^"]+)"', page)  # noqa: E731
    assert set(listed(first)) | set(listed(second)) == set(issued)
    assert len(listed(first)) == 2 and len(listed(second)) == 1
    assert "下一页" in first and "上一页" not in first
    assert "上一页" in second and "下一页" not in second
    assert theirs["report_no"] not in first + second
    # Nonsense page numbers fall back to the first page.
    _, odd, _ = await api.call("GET", "/report?page=-3", headers=cookie)
    assert listed(odd) == listed(first)


async def test_the_bank_lands_on_the_code_form_and_its_menu_has_it(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("bank", "demo-bank-2024")
    cookie = {"Cookie": f"jjj_session={token}"}
    status, _, reply = await api.call("GET", "/report", headers=cookie, allow_redirects=False)
    assert status in (302, 303) and reply.headers["Location"] == "/g"
    _, page, _ = await api.call("GET", "/g", headers=cookie)
    assert 'name="code"' in page and 'href="/g">凭授权码查看</a>' in page
    # Accounts that speak for a subject do not get the entry.
    _, own, _ = await api.call(
        "GET", "/report", headers={"Cookie": f"jjj_session={await api.login('clean-co', 'demo-clean-2024')}"}
    )
    assert "凭授权码查看</a>" not in own
