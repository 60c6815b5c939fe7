"""Every page of the portal, as each kind of user meets it, at desktop width and on a
390 px phone (Chromium, JavaScript off): a screenshot of each is written under
``var/test-artifacts/tour/<width>/`` (or ``$JJJ_TEST_ARTIFACTS``), and each page is
checked the same way — Chinese only (no Latin-letter words but codes, numbers, addresses
and format names), no page wider than the screen, a skip link and the operator's footer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gateway.browsing import WIDTHS, check_page, log_in, needs_chromium, open_tab, shot

pytestmark = needs_chromium


class Tour:
    """Pages seen so far at one width, each checked and photographed as it is seen."""

    def __init__(self, browser: Any, base: str, width: str) -> None:
        self.browser = browser
        self.base = base
        self.width = width
        self.seen: list[str] = []
        self.readers: dict[int, str] = {}

    async def person(self, username: str | None = None, password: str | None = None) -> Any:
        page = await open_tab(self.browser, self.width)
        self.readers[id(page)] = username or ""
        if username is not None:
            await log_in(page, self.base, username, password or "")
        return page

    async def look(self, page: Any, name: str, path: str | None = None) -> str:
        """Open ``path`` (or stay), check the page and save its picture; its main text."""
        if path is not None:
            await page.goto(self.base + path)
        await page.wait_for_load_state()
        await shot(page, Path("tour", self.width, f"{len(self.seen) + 1:02d}-{name}.png"))
        self.seen.append(name)
        return await check_page(page, name, reader=self.readers[id(page)])


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_page_at_both_widths(gateway, browser, width: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nodes.seed import DEMO_SUBJECTS

    _, running, _ = gateway
    tour = Tour(browser, running.url, width)

    visitor = await tour.person()
    await tour.look(visitor, "login", "/")
    await tour.look(visitor, "verify", "/verify")
    await tour.look(visitor, "not-found", "/no-such-page")

    clerk = await tour.person("clean-co", "demo-clean-2024")
    await tour.look(clerk, "ask")
    await clerk.click("button:has-text('查询三地并出具报告')")
    main = await tour.look(clerk, "report-clean")
    code = (await clerk.locator("dd.code").first.inner_text()).strip()
    assert "—" not in main.split("\n", 3)[0]
    await tour.look(clerk, "my-reports", "/report")
    await tour.look(clerk, "grants", "/grants")
    await tour.look(clerk, "history", "/history")
    await tour.look(clerk, "objections", "/objections")
    await tour.look(visitor, "verify-genuine", f"/verify?code={code}")
    await tour.look(visitor, "verify-bogus", "/verify?code=0000-0000-0000-0000-0")

    holder = await tour.person("records-co", "demo-records-2024")
    await holder.click("button:has-text('查询三地并出具报告')")
    await tour.look(holder, "report-records")
    tall = await holder.evaluate("document.documentElement.scrollHeight")
    assert tall < 12 * WIDTHS[width][1], f"the report is {tall} px tall at {width} width"

    bank = await tour.person("bank", "demo-bank-2024")
    await tour.look(bank, "bank-home", "/")
    await tour.look(bank, "redeem", "/g")

    officer = await tour.person("agency", "demo-agency-2024")
    await tour.look(officer, "agency")
    listed = tmp_path / "名单.csv"
    listed.write_text("统一社会信用代码\n" + "\n".join(d.id for d in DEMO_SUBJECTS) + "\n", encoding="utf-8")
    await officer.fill("#purpose", "评优评先资格审查")
    await officer.set_input_files("#file", str(listed))
    await officer.click("button:has-text('开始核查')")
    for _ in range(100):
        await officer.wait_for_load_state()
        if (await officer.locator("#batch-status").inner_text()).strip() == "已完成":
            break
        await officer.wait_for_timeout(300)
        await officer.reload()
    await tour.look(officer, "agency-job")
    await tour.look(officer, "cases", "/objections?region=tianjin")
    assert len(tour.seen) >= 17
