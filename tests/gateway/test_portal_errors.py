"""Error pages in Chinese only, with a way back; an unknown address is a page, not JSON."""

from __future__ import annotations

import re
from typing import Any

LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def _visible(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


async def test_an_unknown_address_is_a_page_with_a_way_back(gateway: Any) -> None:
    api, running, _ = gateway
    status, page, reply = await api.call("GET", "/no-such-page", headers={"Referer": f"{running.url}/verify?code=x"})
    assert status == 404 and reply.content_type == "text/html"
    assert "页面不存在" in page and 'href="/verify?code=x"' in page and 'href="/">回到首页' in page
    # Machine paths keep answering in problem+json.
    async with api.http.get(f"{running.url}/.well-known/nothing") as raw:
        assert raw.status == 404 and raw.content_type == "application/problem+json"


async def test_an_error_page_speaks_chinese_and_leads_back(gateway: Any) -> None:
    api, running, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    status, page, _ = await api.call(
        "GET",
        "/reports/JJJ-20250616-NOSUCHREPO",
        headers={"Cookie": f"jjj_session={token}", "Referer": f"{running.url}/report"},
    )
    assert status == 404
    main = _visible(page.split("<main", 1)[1].split(">", 1)[1].split("</main>", 1)[0])
    assert "没有编号为" in main and not LATIN_WORD.search(main.replace("JJJ-20250616-NOSUCHREPO", "")), main
    assert 'href="/report">返回上一页' in page
    # A link back never leads to another site.
    status, page, _ = await api.call(
        "GET",
        "/reports/JJJ-20250616-NOSUCHREPO",
        headers={"Cookie": f"jjj_session={token}", "Referer": "https://evil.example/phish"},
    )
    assert "evil.example" not in page and 'href="/">返回上一页' in page
