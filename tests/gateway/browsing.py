"""The portal as the browser tests meet it: Debian's Chromium (driven by Playwright, the
``browser`` fixture in conftest.py) with JavaScript off, a tab at desktop width or on a
390 px phone, and the checks every page a test visits gets — in Chinese only (no Latin
word but codes, numbers, addresses, format names and the reader's login name: see
tests/gateway/latin.py), no wider than the screen, with a skip link and the operator's
footer. Screenshots go under ``var/test-artifacts/`` (or ``$JJJ_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.latin import latin_words

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("JJJ_TEST_ARTIFACTS", "var/test-artifacts"))

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium not installed (apt-get install chromium; .ci/run does it)"
)

# The widths the portal is checked at: a desktop and a 390 px phone (an iPhone 12 to 15).
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


async def open_tab(browser: Any, width: str = "desktop") -> Any:
    """A new person's tab (their own cookies), JavaScript off: every core flow must work
    with plain forms. The phone's is a mobile viewport, which honours the page's
    ``<meta name="viewport">`` as a phone's browser does."""
    w, h = WIDTHS[width]
    phone = width != "desktop"
    context = await browser.new_context(
        java_script_enabled=False,
        accept_downloads=True,
        locale="zh-CN",
        viewport={"width": w, "height": h},
        is_mobile=phone,
        has_touch=phone,
    )
    return await context.new_page()


async def log_in(page: Any, base: str, username: str, password: str) -> None:
    await page.goto(base + "/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def shot(page: Any, path: Path) -> None:
    """A full-page screenshot of ``page`` at ``path`` (under :data:`ARTIFACTS` if relative)."""
    path = ARTIFACTS / path
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)


async def check_page(page: Any, name: str, *, reader: str = "", also: Iterable[str] = ()) -> str:
    """Check the page ``page`` shows as every page is checked; its main text.

    ``reader`` is the login name of the person reading it, the one Latin word a page may
    show them besides codes and format names: they chose it and type it. ``also`` are the
    words of others' choosing a page shows by design: other accounts' login names (查询记录
    names who looked so), the name of a file someone attached."""
    await page.wait_for_load_state()
    # One round trip for all of it: the journeys check some sixty pages.
    seen = await page.evaluate(_LOOK)
    leaks = latin_words(seen["title"] + "\n" + seen["text"], frozenset({reader, *also} - {""}))
    assert leaks == [], f"{name} ({page.url}): {leaks}"
    assert seen["lang"] == "zh-CN", name
    screen = page.viewport_size["width"]
    assert seen["wide"] <= screen, f"{name} ({page.url}) is {seen['wide']} px wide on a {screen} px screen"
    assert seen["skips"] == ["#main"], name
    assert seen["footers"] == 1, name
    return str(seen["main"])


_LOOK = """() => ({
    title: document.title,
    text: document.body.innerText,
    lang: document.documentElement.getAttribute("lang"),
    wide: document.documentElement.scrollWidth,
    skips: Array.from(document.querySelectorAll("a.skip-link"), link => link.getAttribute("href")),
    footers: document.querySelectorAll("footer.site").length,
    main: document.querySelector("main").innerText,
})"""
