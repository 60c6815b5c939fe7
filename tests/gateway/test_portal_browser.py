"""The portal in a real browser (Debian's Chromium, driven by Playwright), JavaScript off:
log in, get the report, download the PDF, grant a bank access by its credit code with a
preview, print and save the slip, decode the QR code from the page, redeem it as the bank,
reload and keep the PDF, verify on the public page; tampered and
bogus inputs; an incomplete report; someone else's report. Screenshots of the main pages
are saved under ``var/test-artifacts/`` (or ``$JJJ_TEST_ARTIFACTS``)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from credit.regions import Region
from gateway.demo import DEMO_BANK
from gateway.reports.pdf import verify_pdf
from tests.gateway.sealing import ORGANISATION, federation

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("JJJ_TEST_ARTIFACTS", "var/test-artifacts"))

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium not installed (apt-get install chromium; .ci/run does it)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        await chromium.close()


async def _context(browser: Any) -> Any:
    # No JavaScript: every core flow must work with plain forms.
    return await browser.new_context(java_script_enabled=False, accept_downloads=True, locale="zh-CN")


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _login(page: Any, base: str, username: str, password: str) -> None:
    await page.goto(base + "/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_the_whole_journey_in_a_browser(gateway, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    base = running.url
    clerk = await (await _context(browser)).new_page()

    await clerk.goto(base + "/")
    assert await clerk.get_attribute("html", "lang") == "zh-CN"
    await _shot(clerk, "01-login")
    await _login(clerk, base, "clean-co", "demo-clean-2024")
    assert clerk.url.endswith("/report")
    await clerk.check("input[name=years][value='5']")
    await clerk.click("button:has-text('查询三地并出具报告')")
    await clerk.wait_for_load_state()
    assert re.search(r"/reports/JJJ-\d{8}-\w{10}$", clerk.url)
    verdict = clerk.locator("section.verdict")
    assert await verdict.get_attribute("class") == "verdict verdict-clean"
    assert "三地均无违法违规记录" in await verdict.inner_text()
    assert await clerk.locator("table.regions tbody tr").count() == 3
    await _shot(clerk, "02-report-clean")
    report_no = clerk.url.rsplit("/", 1)[1]
    code = (await clerk.locator("dd.code").first.inner_text()).strip()

    # The PDF downloads and verifies with nothing else.
    async with clerk.expect_download() as download:
        await clerk.click("text=下载 PDF")
    pdf = tmp_path / "report.pdf"
    await (await download.value).save_as(pdf)
    document = verify_pdf(pdf.read_bytes(), running.service.keyring, trust=running.service.seal_trust)
    assert document["report_no"] == report_no and document["window"]["years"] == 5

    # A grant to the bank, by its credit code: preview (nothing issued yet), confirm, then
    # the printable slip with the QR code.
    await clerk.goto(base + "/grants")
    await clerk.fill("#purpose", "招标投标")
    await clerk.fill("#grantee_org", DEMO_BANK.code)
    await clerk.fill("#max_uses", "2")
    await clerk.click("button:has-text('预览授权内容')")
    await clerk.wait_for_load_state()
    assert "授权预览" in await clerk.locator("h1").inner_text()
    grantee = await clerk.locator("#grantee").inner_text()
    assert DEMO_BANK.name in grantee and DEMO_BANK.code in grantee
    assert "尚未出具" in await clerk.locator("#not-issued").inner_text()
    await _shot(clerk, "03-grant-preview")
    await clerk.check("input[name=confirm]")
    await clerk.click("button:has-text('确认授权')")
    await clerk.wait_for_load_state()
    assert DEMO_BANK.name in await clerk.locator("#granted-to").inner_text()
    grant_code = (await clerk.locator("#grant-code").inner_text()).strip()
    granted_no = (await clerk.locator("#granted-report").inner_text()).strip()
    await _shot(clerk, "04-grant-created")
    await clerk.emulate_media(media="print")
    await _shot(clerk, "04-grant-slip-printed")
    assert not await clerk.locator("header.site").is_visible()  # the print shows the slip alone
    await clerk.emulate_media(media="screen")
    shot = await clerk.locator("#grant-qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    assert found, "no QR code on the page"
    grant_url = found[0].text
    assert grant_url == f"{base}/g/{grant_code}"
    async with clerk.expect_download() as saved:
        await clerk.click("#slip-pdf")
    slip = tmp_path / "slip.pdf"
    await (await saved.value).save_as(slip)
    assert grant_code in PdfReader(slip).pages[0].extract_text()

    # The bank scans it, logs in and sees the report the grant gave; reloading uses nothing.
    bank = await (await _context(browser)).new_page()
    await _login(bank, base, "bank", "demo-bank-2024")
    await bank.goto(grant_url)
    assert await bank.input_value("#code") == grant_code
    await bank.click("button:has-text('查看报告')")
    await bank.wait_for_load_state()
    assert re.search(r"/g/r/r_[\w-]+$", bank.url), bank.url
    await _shot(bank, "05-bank-redeemed")
    assert "招标投标" in await bank.locator("p.message").inner_text(), await bank.content()
    assert (await bank.locator("dt:text-is('报告编号') + dd").first.inner_text()).strip() == granted_no
    await bank.reload()
    assert "剩余 1 次" in await bank.locator("#redeemed-note").inner_text()
    # The bank keeps a copy: the PDF, which verifies on its own.
    async with bank.expect_download() as kept:
        await bank.click("text=下载 PDF")
    copy = tmp_path / "bank-copy.pdf"
    await (await kept.value).save_as(copy)
    assert (
        verify_pdf(copy.read_bytes(), running.service.keyring, trust=running.service.seal_trust)["report_no"]
        == granted_no
    )
    await bank.goto(base + "/g")
    assert granted_no in await bank.locator("table.redeemed").inner_text()

    # The public verify page: by code (as the QR on the PDF opens it), by PDF upload.
    visitor = await (await _context(browser)).new_page()
    await visitor.goto(f"{base}/verify?code={code}")
    result = visitor.locator("section.verification")
    assert await result.get_attribute("class") == "verification verification-genuine"
    assert "报告真实有效" in await result.inner_text()
    regions = await visitor.locator("#verified-regions").inner_text()
    assert all(f"{region.name_zh}：已应答" in regions for region in Region)
    await _shot(visitor, "06-verify-genuine")
    await visitor.set_input_files("#file", str(pdf))
    await visitor.click("button:has-text('上传核验')")
    await visitor.wait_for_load_state()
    uploaded = await visitor.locator("section.verification").inner_text()
    assert "报告真实有效" in uploaded and f"有效：{ORGANISATION}" in uploaded  # and who signed the PDF

    # A tampered PDF and a bogus code are not genuine.
    tampered = tmp_path / "tampered.pdf"
    data = bytearray(pdf.read_bytes())
    at = data.find(report_no.encode(), len(data) // 3)
    if at < 0:  # the number may sit in a compressed stream: alter the embedded report instead
        at = data.rfind(b"eyJ")
    data[at + 5] ^= 0x01
    tampered.write_bytes(bytes(data))
    await visitor.goto(base + "/verify")
    await visitor.set_input_files("#file", str(tampered))
    await visitor.click("button:has-text('上传核验')")
    await visitor.wait_for_load_state()
    assert await visitor.locator("section.verification").get_attribute("class") == (
        "verification verification-not-genuine"
    )
    await _shot(visitor, "07-verify-tampered")
    await visitor.goto(f"{base}/verify?code=0000-0000-0000-0000-0")
    assert await visitor.locator("section.verification").get_attribute("class") == (
        "verification verification-not-genuine"
    )

    # Offline too: the CLI checks the PDF alone, with the published keys and the federation CA.
    jwks = tmp_path / "jwks.json"
    jwks.write_text(__import__("json").dumps(running.service.keyring.jwks()), encoding="utf-8")
    ca = ["--ca", str(federation().ca)]
    checked = subprocess.run(
        [sys.executable, "-m", "jjj", "verify", str(pdf), "--jwks", str(jwks), *ca], capture_output=True, text=True
    )
    assert checked.returncode == 0 and "GENUINE" in checked.stdout, checked.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "jjj", "verify", str(tampered), "--jwks", str(jwks), *ca],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1 and "NOT GENUINE" in checked.stderr

    # The subject sees that the bank looked.
    await clerk.goto(base + "/history")
    history = await clerk.locator("table").inner_text()
    assert "bank" in history and "凭授权查看" in history
    await _shot(clerk, "08-history")

    # Someone else's report is refused.
    other = await (await _context(browser)).new_page()
    await _login(other, base, "records-co", "demo-records-2024")
    response = await other.goto(f"{base}/reports/{report_no}")
    assert response is not None and response.status == 403
    assert "无权访问" in await other.locator("h1").inner_text()


async def test_an_incomplete_report_looks_incomplete(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    _, running, nodes = gateway
    await nodes[Region.HEBEI].node.stop(0)
    page = await (await _context(browser)).new_page()
    await _login(page, running.url, "clean-co", "demo-clean-2024")
    await page.click("button:has-text('查询三地并出具报告')")
    await page.wait_for_load_state()
    verdict = page.locator("section.verdict")
    assert await verdict.get_attribute("class") == "verdict verdict-incomplete"
    text = await verdict.inner_text()
    assert "报告不完整" in text and "不能作为无违法违规证明" in text
    assert "无违法违规记录" not in text
    hebei = page.locator("table.regions tr.region-unavailable")
    assert await hebei.count() == 1 and "暂不可用" in await hebei.inner_text()
    assert await page.locator("td.cell-unavailable").count() > 0
    await _shot(page, "09-report-incomplete")


async def test_forms_need_the_csrf_token_and_pages_carry_security_headers(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    status, _, reply = await api.call("GET", "/")
    assert status == 200
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Frame-Options"] == "DENY" and reply.headers["Cache-Control"] == "no-store"
    cookie = reply.headers.getall("Set-Cookie")
    assert any("jjj_csrf=" in c and "HttpOnly" in c and "SameSite=Strict" in c for c in cookie)
    # A login form posted without the token (as from another site) is refused.
    status, body, _ = await api.call("POST", "/login", data={"username": "clean-co", "password": "demo-clean-2024"})
    assert status == 403 and "表单已失效" in body


async def test_an_agency_officer_batch_checks_in_the_browser(gateway, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    from gateway.batch.summary_pdf import attached_summary
    from nodes.seed import DEMO_SUBJECTS

    _, running, _ = gateway
    ids = [demo.id for demo in DEMO_SUBJECTS]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["评优评先企业名单"])
    sheet.append(["序号", "主体名称", "统一社会信用代码"])
    for number, code in enumerate([*ids, "", "91110108MA01RXNE2X", ids[0]], start=1):
        sheet.append([number, f"名单主体{number}", code or None] if code else [number])
    listed = tmp_path / "名单.xlsx"
    book.save(listed)
    page = await (await _context(browser)).new_page()
    await _login(page, running.url, "agency", "demo-agency-2024")
    assert page.url.endswith("/agency")
    assert await page.locator("#batch-jobs").count() == 0  # no job yet, no list of them
    await page.fill("#purpose", "评优评先资格审查")
    await page.set_input_files("#file", str(listed))
    await page.click("button:has-text('开始核查')")
    await page.wait_for_load_state()
    assert "/agency/jobs/b_" in page.url
    job_id = page.url.rsplit("/", 1)[1]
    for _ in range(100):  # the page refreshes itself (no JavaScript) until the job is done
        if (await page.locator("#batch-status").inner_text()).strip() == "已完成":
            break
        await page.wait_for_timeout(300)
        await page.reload()
    summary = await page.locator("#batch-summary").inner_text()
    counts = dict(zip(summary.split("\n")[::2], summary.split("\n")[1::2], strict=True))
    assert counts == {"名单行数": "7", "有记录": "2", "三地均无记录": "2", "不完整": "0", "代码无效": "1", "重复": "1",
                      "空行": "1"}, counts  # fmt: skip
    rows = page.locator("#batch-rows tbody tr")
    assert await rows.count() == 7
    assert (await rows.nth(0).locator("td").nth(2).inner_text()) == "名单主体1"  # the list's name beside the code
    assert (await rows.nth(6).locator("td").nth(9).inner_text()).startswith("与第 1 行重复")
    assert (await rows.nth(4).locator("td").nth(4).inner_text()) == "空行"
    await _shot(page, "10-agency-batch")
    async with page.expect_download() as download:
        await page.click("text=下载统计表（CSV）")
    table = tmp_path / "table.csv"
    await (await download.value).save_as(table)
    lines = table.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + 7 and "代码无效" in lines[-2] and "名单主体1" in lines[1]
    async with page.expect_download() as download:
        await page.click("text=下载签名汇总（PDF）")
    pdf = tmp_path / "summary.pdf"
    await (await download.value).save_as(pdf)
    signed = attached_summary(pdf.read_bytes(), running.service.keyring)
    assert signed["job_id"] == job_id and signed["counts"]["subjects"] == 7

    # Back on /agency, the job is listed with its counts and links.
    await page.goto(running.url + "/agency")
    listed_jobs = page.locator("#batch-jobs tbody tr")
    assert await listed_jobs.count() == 1
    row_text = await listed_jobs.nth(0).inner_text()
    assert (
        job_id.removeprefix("b_").upper() in row_text
        and "已完成" in row_text
        and "重复 1" in row_text
        and "空行 1" in row_text
    )
    await _shot(page, "11-agency-jobs")
    await page.click(f"#batch-jobs a[href='/agency/jobs/{job_id}']")
    await page.wait_for_load_state()
    assert page.url.endswith(f"/agency/jobs/{job_id}")


async def test_an_objection_from_the_report_page_to_its_outcome(gateway, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    base = running.url
    proof = tmp_path / "复议决定书.pdf"
    proof.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")

    subject = await (await _context(browser)).new_page()
    await _login(subject, base, "records-co", "demo-records-2024")
    await subject.click("button:has-text('查询三地并出具报告')")
    await subject.wait_for_load_state()
    code = (await subject.locator("dd.code").first.inner_text()).strip()
    await subject.locator("a:has-text('提出异议或信用修复申请')").first.click()
    await subject.wait_for_load_state()
    assert "异议与信用修复申请" in await subject.locator("h1").inner_text()
    decision_no = (await subject.locator(".card p").first.inner_text()).split("：", 1)[1]
    await subject.fill("#reason", "该处罚已被行政复议决定撤销")
    await subject.set_input_files("#attachment", str(proof))
    await _shot(subject, "20-objection-form")
    await subject.click("button:has-text('提交申请')")
    await subject.wait_for_load_state()
    assert subject.url.split("?")[0].endswith("/objections")
    case = subject.locator("section.case").first
    number = (await case.locator("h2").inner_text()).split(" ")[0]
    assert "处理中" in await case.inner_text() and "复议决定书.pdf" in await case.inner_text()
    await _shot(subject, "21-objection-filed")

    # A new report marks the record 异议处理中.
    await subject.goto(base + "/report")
    await subject.click("button:has-text('查询三地并出具报告')")
    await subject.wait_for_load_state()
    marked = subject.locator(".record", has=subject.locator(".objection-open"))
    assert await marked.count() == 1 and decision_no in await marked.inner_text()

    # An officer decides it in the portal, in the queue of the record's region.
    officer = await (await _context(browser)).new_page()
    await _login(officer, base, "agency", "demo-agency-2024")
    region = {"BJ": "beijing", "TJ": "tianjin", "HE": "hebei"}[number[:2]]
    await officer.goto(f"{base}/objections?region={region}")
    section = officer.locator("section.case", has=officer.locator(f"h2:has-text('{number}')"))
    async with officer.expect_download() as download:
        await section.locator("a:has-text('复议决定书.pdf')").click()
    assert (await (await download.value).path()).read_bytes() == proof.read_bytes()
    await section.locator("input[name=resolution][value=revoked]").check()
    await section.locator("textarea[name=note]").fill("经复核，原处罚决定已撤销")
    await _shot(officer, "22-objection-queue")
    await section.locator("button:has-text('办结')").click()
    await officer.wait_for_load_state()
    assert "state=closed" in officer.url and number in await officer.locator("main").inner_text()

    # The subject sees the outcome; the first report's verify page says it was superseded.
    await subject.goto(base + "/objections")
    text = await subject.locator("section.case").first.inner_text()
    assert "已办结" in text and "已撤销" in text and "经复核，原处罚决定已撤销" in text
    await _shot(subject, "23-objection-outcome")
    for _ in range(100):
        await subject.goto(f"{base}/verify?code={code}")
        if "已更新" in await subject.locator("main").inner_text():
            break
        await subject.wait_for_timeout(100)
    assert "已更新" in await subject.locator("main").inner_text()
