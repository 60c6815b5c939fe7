"""The report on a phone, on paper and from the keyboard, in Debian's Chromium with
JavaScript off (as in test_portal_browser.py): at 390 px wide the table of domains is one
card per row with readable cells; printing hides the navigation; the skip link is the
first stop of the Tab key; the print button shows only where scripting runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gateway.browsing import log_in, needs_chromium, open_tab, shot
from tests.gateway.conftest import TODAY, issue_on

pytestmark = needs_chromium

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


async def _report_with_records(gateway: Any, page: Any) -> str:
    _, running, _ = gateway
    issue_on(running, TODAY)
    await log_in(page, running.url, "records-co", "demo-records-2024")
    await page.click("button:has-text('查询三地并出具报告')")
    await page.wait_for_load_state()
    assert "/reports/" in page.url
    return str(page.url)


async def test_the_report_reads_on_a_phone(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    page = await open_tab(browser)
    context = page.context
    await page.set_viewport_size(PHONE)
    url = await _report_with_records(gateway, page)
    await page.goto(url)
    await shot(page, Path("10-report-phone.png"))
    height = await page.evaluate("document.documentElement.scrollHeight")
    width = await page.evaluate("document.documentElement.scrollWidth")
    lines = await page.locator("table.lines tbody tr").count()
    # Before: the five columns squeezed each cell to a few characters a line (14 000 px with
    # CJK fonts). Now a card per line, one text line for the many with no record anywhere.
    print(f"390 px: {height} px tall for {lines} lines, {width} px wide")
    # The head of the page (registration details, verdict, facts with the cut-off note,
    # regions) takes about 2 500 px on a phone; each line at most 100 more.
    assert height < 2500 + 100 * lines, (height, lines)
    assert width <= PHONE["width"], width  # nothing sideways
    # Every cell in sight is wide enough for a phrase, not a sliver; those of a line with no
    # record anywhere are summed up in one line instead (and kept for screen readers).
    widths = await page.locator("table.lines td.cell").evaluate_all(
        "cells => cells.map(cell => cell.getBoundingClientRect().width)"
    )
    shown = [w for w in widths if w > 1]
    assert shown and min(shown) >= 100, sorted(shown)[:5]
    record = page.locator("table.lines td.cell-records").first
    box = await record.bounding_box()
    assert box is not None and box["width"] > 300  # records take the card's width
    label = await record.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label.strip('"') in ("北京", "天津", "河北")  # the column heads are out of sight
    summaries = await page.locator("table.lines tbody tr").evaluate_all(
        "rows => rows.map(row => getComputedStyle(row, '::after').content)"
    )
    assert '"三地均无违法违规记录"' in summaries
    hidden = len(widths) - len(shown)
    assert hidden == 3 * summaries.count('"三地均无违法违规记录"')
    await context.close()


async def test_the_desktop_table_is_unchanged(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    page = await open_tab(browser)
    context = page.context
    await page.set_viewport_size(DESKTOP)
    await page.goto(await _report_with_records(gateway, page))
    display = await page.locator("table.lines td.cell").first.evaluate("cell => getComputedStyle(cell).display")
    assert display == "table-cell"
    heads = page.locator("table.lines thead th")
    assert await heads.count() == 5 and await heads.nth(2).is_visible()
    before = await page.locator("table.lines td.cell").first.evaluate(
        "cell => getComputedStyle(cell, '::before').content"
    )
    assert before in ("none", "normal")
    await context.close()


async def test_printing_hides_the_navigation(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    page = await open_tab(browser)
    context = page.context
    await page.goto(await _report_with_records(gateway, page))
    # Without scripting the button could do nothing: it is not shown; the note says how to print.
    assert not await page.locator("button.print-button").is_visible()
    assert await page.locator("text=打印本页请使用浏览器菜单中的“打印”").is_visible()
    await page.emulate_media(media="print")
    for hidden in ("header.site", "footer.site", "nav", "p.actions", ".skip-link"):
        assert not await page.locator(hidden).first.is_visible(), hidden
    assert await page.locator("section.verdict").is_visible()
    assert await page.locator("table.lines").is_visible()
    pdf = await page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    await context.close()


async def test_the_print_button_prints_where_scripting_runs(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    issue_on(running, TODAY)
    context = await browser.new_context(java_script_enabled=True, locale="zh-CN")
    # Count the calls instead of opening the print dialogue; the page's CSP must let the
    # button's handler run, or nothing is counted.
    await context.add_init_script("window.__printed = 0; window.print = () => { window.__printed += 1; };")
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    await log_in(page, running.url, "clean-co", "demo-clean-2024")
    await page.click("button:has-text('查询三地并出具报告')")
    await page.wait_for_load_state()
    button = page.locator("button.print-button")
    assert await button.is_visible()
    await button.click()
    assert await page.evaluate("window.__printed") == 1, refused
    assert not refused
    await context.close()


async def test_the_skip_link_is_the_first_stop(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    page = await open_tab(browser)
    context = page.context
    for path in ("/", "/verify"):
        await page.goto(running.url + path)
        skip = page.locator("a.skip-link")
        assert not await skip.is_visible() or (await skip.bounding_box() or {"y": -1})["y"] < 0
        await page.keyboard.press("Tab")
        focused = page.locator(":focus")
        assert await focused.inner_text() == "跳到主要内容", path
        box = await focused.bounding_box()
        assert box is not None and box["y"] >= 0  # in sight once it has the focus
        await page.keyboard.press("Enter")
        assert page.url.endswith("#main")
        assert await page.locator("main#main").evaluate("main => document.activeElement === main")
    await context.close()
