"""The portal's three journeys in a real browser (Debian's Chromium, driven by Playwright),
JavaScript off, each walked at desktop width and again on a 390 px phone against the same
gateway: the enterprise's (log in, get the report with its subject named, download the
PDF, grant a bank access by its credit code with a preview, print and save the slip,
decode the QR code from the page; the bank redeems it, reloads without using the grant
again and keeps the PDF, the JWS and the JSON; the public verify page, the access history,
someone else's report refused; tampered and bogus inputs), the agency officer's batch
check, and an objection from the report page to its outcome. Every page they visit is
checked as the tour checks it (tests/gateway/browsing.py): Chinese only, no wider than
the screen, a skip link and the footer. The offline check of the PDF (``jjj verify``) has
no screen and is made once; so are an incomplete report and the forms' CSRF token.
Screenshots of the main pages are saved under ``var/test-artifacts/`` (or
``$JJJ_TEST_ARTIFACTS``), the phone's with ``-phone`` in their names."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from pypdf import PdfReader

from credit.demo import DEMO_SUBJECTS
from credit.regions import Region
from credit.signing import verify
from gateway.demo import DEMO_BANK
from gateway.reports.pdf import verify_pdf
from tests.gateway.browsing import WIDTHS, check_page, log_in, needs_chromium, open_tab, shot
from tests.gateway.sealing import ORGANISATION, federation
from tests.gateway.test_report_subject import pdf_text

pytestmark = needs_chromium

SUBJECTS = {demo.key: demo for demo in DEMO_SUBJECTS}
BEIJING = timezone(timedelta(hours=8))


async def _shot(page: Any, name: str, width: str = "desktop") -> None:
    await shot(page, Path(f"{name}.png" if width == "desktop" else f"{name}-{width}.png"))


def _beijing(instant: str) -> str:
    """How a page prints an instant of a document: Beijing time, the Chinese way."""
    at = datetime.fromisoformat(instant).astimezone(BEIJING)
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M:%S}"


async def _download(page: Any, link: str, to: Path) -> bytes:
    async with page.expect_download() as download:
        await page.click(link)
    await (await download.value).save_as(to)
    return to.read_bytes()


async def _jjj_verify(pdf: Path, jwks: Path) -> tuple[int | None, str, str]:
    """``jjj verify`` of ``pdf`` in a process of its own: its exit status, output and errors."""
    command = ["-m", "jjj", "verify", str(pdf), "--jwks", str(jwks), "--ca", str(federation().ca)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_the_whole_journey_in_a_browser(gateway, browser, subtests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    for width in WIDTHS:
        with subtests.test(width=width):
            (tmp_path / width).mkdir()
            await _whole_journey(running, browser, width, tmp_path / width)


async def _whole_journey(running: Any, browser: Any, width: str, tmp_path: Path) -> None:
    base = running.url
    company = SUBJECTS["clean"]
    clerk = await open_tab(browser, width)

    await clerk.goto(base + "/")
    await check_page(clerk, "login")
    await _shot(clerk, "01-login", width)
    await log_in(clerk, base, "clean-co", "demo-clean-2024")
    assert clerk.url.endswith("/report")
    await check_page(clerk, "ask", reader="clean-co")
    await clerk.check("input[name=years][value='5']")
    await clerk.click("button:has-text('查询三地并出具报告')")
    await clerk.wait_for_load_state()
    assert re.search(r"/reports/JJJ-\d{8}-\w{10}$", clerk.url)
    await check_page(clerk, "report", reader="clean-co")
    verdict = clerk.locator("section.verdict")
    assert await verdict.get_attribute("class") == "verdict verdict-clean"
    assert "三地均无违法违规记录" in await verdict.inner_text()
    assert await clerk.locator("table.regions tbody tr").count() == 3
    # The subject is named from its register, not a dash.
    assert (await clerk.locator("dd.subject-name").inner_text()).strip() == company.name
    await _shot(clerk, "02-report-clean", width)
    report_no = clerk.url.rsplit("/", 1)[1]
    code = (await clerk.locator("dd.code").first.inner_text()).strip()

    # The PDF downloads, verifies with nothing else and names the subject.
    pdf = tmp_path / "report.pdf"
    data = await _download(clerk, "text=下载 PDF", pdf)
    document = verify_pdf(data, running.service.keyring, trust=running.service.seal_trust)
    assert document["report_no"] == report_no and document["window"]["years"] == 5
    assert company.name in pdf_text(data)[0]
    # The page said when it was issued in Beijing time (the document keeps UTC).
    issued = clerk.locator("dt:text-is('出具时间') + dd")
    assert (await issued.inner_text()).strip() == _beijing(document["issued_at"])

    # A grant to the bank, by its credit code: preview (nothing issued yet), confirm, then
    # the printable slip with the QR code.
    await clerk.goto(base + "/grants")
    await check_page(clerk, "grants", reader="clean-co")
    await clerk.fill("#purpose", "招标投标")
    await clerk.fill("#grantee_org", DEMO_BANK.code)
    await clerk.fill("#max_uses", "2")
    await clerk.click("button:has-text('预览授权内容')")
    await check_page(clerk, "grant-preview", reader="clean-co")
    assert "授权预览" in await clerk.locator("h1").inner_text()
    grantee = await clerk.locator("#grantee").inner_text()
    assert DEMO_BANK.name in grantee and DEMO_BANK.code in grantee
    assert "尚未出具" in await clerk.locator("#not-issued").inner_text()
    await _shot(clerk, "03-grant-preview", width)
    await clerk.check("input[name=confirm]")
    await clerk.click("button:has-text('确认授权')")
    await check_page(clerk, "grant-created", reader="clean-co")
    assert DEMO_BANK.name in await clerk.locator("#granted-to").inner_text()
    grant_code = (await clerk.locator("#grant-code").inner_text()).strip()
    granted_no = (await clerk.locator("#granted-report").inner_text()).strip()
    await _shot(clerk, "04-grant-created", width)
    await clerk.emulate_media(media="print")
    await _shot(clerk, "04-grant-slip-printed", width)
    assert not await clerk.locator("header.site").is_visible()  # the print shows the slip alone
    await clerk.emulate_media(media="screen")
    qr = await clerk.locator("#grant-qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr)))
    assert found, "no QR code on the page"
    grant_url = found[0].text
    assert grant_url == f"{base}/g/{grant_code}"
    slip = await _download(clerk, "#slip-pdf", tmp_path / "slip.pdf")
    assert grant_code in PdfReader(io.BytesIO(slip)).pages[0].extract_text()

    # The bank scans it, logs in and sees the report the grant gave, its subject named.
    bank = await open_tab(browser, width)
    await log_in(bank, base, "bank", "demo-bank-2024")
    await bank.goto(grant_url)
    await check_page(bank, "redeem", reader="bank")
    assert await bank.input_value("#code") == grant_code
    await bank.click("button:has-text('查看报告')")
    await bank.wait_for_load_state()
    assert re.search(r"/g/r/r_[\w-]+$", bank.url), bank.url
    await check_page(bank, "redeemed", reader="bank")
    await _shot(bank, "05-bank-redeemed", width)
    assert "招标投标" in await bank.locator("p.message").inner_text(), await bank.content()
    assert (await bank.locator("dt:text-is('报告编号') + dd").first.inner_text()).strip() == granted_no
    assert (await bank.locator("dd.subject-name").inner_text()).strip() == company.name
    # Reloading uses nothing: the count left is the same, here and on the subject's list.
    note = bank.locator("#redeemed-note")
    assert "剩余 1 次" in await note.inner_text()
    await bank.reload()
    await check_page(bank, "redeemed-again", reader="bank")
    assert "剩余 1 次" in await note.inner_text()
    await clerk.goto(base + "/grants")
    mine = clerk.locator("table tbody tr", has=clerk.locator("td:text-is('招标投标')")).first
    assert "1/2" in await mine.inner_text()
    # The bank keeps a copy: the PDF (which verifies on its own and names the subject),
    # the signed report and its data.
    copy = await _download(bank, "text=下载 PDF", tmp_path / "bank-copy.pdf")
    assert copy.startswith(b"%PDF-")
    kept = verify_pdf(copy, running.service.keyring, trust=running.service.seal_trust)
    assert kept["report_no"] == granted_no and kept["subject"]["id"] == company.id
    assert company.name in pdf_text(copy)[0]
    token = (await _download(bank, "text=下载签名报告（JWS）", tmp_path / "bank-copy.jws")).decode("ascii")
    assert verify(token, running.service.keyring)["report_no"] == granted_no
    data_copy = json.loads(await _download(bank, "text=下载报告数据（JSON）", tmp_path / "bank-copy.json"))
    assert data_copy["jws"] == token and data_copy["report"]["report_no"] == granted_no
    await bank.goto(base + "/g")
    await check_page(bank, "redeem-list", reader="bank")
    assert granted_no in await bank.locator("table.redeemed").inner_text()

    # The public verify page: by code (as the QR on the PDF opens it), by PDF upload.
    visitor = await open_tab(browser, width)
    await visitor.goto(f"{base}/verify?code={code}")
    await check_page(visitor, "verify-genuine")
    result = visitor.locator("section.verification")
    assert await result.get_attribute("class") == "verification verification-genuine"
    assert "报告真实有效" in await result.inner_text()
    regions = await visitor.locator("#verified-regions").inner_text()
    assert all(f"{region.name_zh}：已应答" in regions for region in Region)
    await _shot(visitor, "06-verify-genuine", width)
    await visitor.set_input_files("#file", str(pdf))
    await visitor.click("button:has-text('上传核验')")
    await check_page(visitor, "verify-upload")
    uploaded = await visitor.locator("section.verification").inner_text()
    assert "报告真实有效" in uploaded and f"有效：{ORGANISATION}" in uploaded  # and who signed the PDF

    # A tampered PDF and a bogus code are not genuine.
    tampered = tmp_path / "tampered.pdf"
    altered = bytearray(pdf.read_bytes())
    at = altered.find(report_no.encode(), len(altered) // 3)
    if at < 0:  # the number may sit in a compressed stream: alter the embedded report instead
        at = altered.rfind(b"eyJ")
    altered[at + 5] ^= 0x01
    tampered.write_bytes(bytes(altered))
    await visitor.goto(base + "/verify")
    await visitor.set_input_files("#file", str(tampered))
    await visitor.click("button:has-text('上传核验')")
    await check_page(visitor, "verify-tampered")
    assert await visitor.locator("section.verification").get_attribute("class") == (
        "verification verification-not-genuine"
    )
    await _shot(visitor, "07-verify-tampered", width)
    await visitor.goto(f"{base}/verify?code=0000-0000-0000-0000-0")
    await check_page(visitor, "verify-bogus")
    assert await visitor.locator("section.verification").get_attribute("class") == (
        "verification verification-not-genuine"
    )

    if width == "desktop":  # the command line has no screen: checked once
        # Offline too: the CLI checks the PDF alone, with the published keys and the federation CA.
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(running.service.keyring.jwks()), encoding="utf-8")
        (genuine, out, err), (forged, _, why) = await asyncio.gather(
            _jjj_verify(pdf, jwks), _jjj_verify(tampered, jwks)
        )
        assert genuine == 0 and "GENUINE" in out, err
        assert forged == 1 and "NOT GENUINE" in why

    # The subject sees that the bank looked.
    await clerk.goto(base + "/history")
    # 查询记录 names who looked by their login: the bank, and (at the width before) the
    # company refused below.
    await check_page(clerk, "history", reader="clean-co", also=["bank", "records-co"])
    history = await clerk.locator("table").inner_text()
    assert "bank" in history and "凭授权查看" in history
    await _shot(clerk, "08-history", width)

    # Someone else's report is refused, on a page with a way back.
    other = await open_tab(browser, width)
    await log_in(other, base, "records-co", "demo-records-2024")
    response = await other.goto(f"{base}/reports/{report_no}")
    assert response is not None and response.status == 403
    await check_page(other, "refused", reader="records-co")
    assert "无权访问" in await other.locator("h1").inner_text()
    assert await other.locator("main a[href='/']:text-is('回到首页')").count() == 1
    for tab in (clerk, bank, visitor, other):
        await tab.context.close()


async def test_an_incomplete_report_looks_incomplete(gateway, browser) -> None:  # type: ignore[no-untyped-def]
    _, running, nodes = gateway
    await nodes[Region.HEBEI].node.stop(0)
    page = await open_tab(browser)
    await log_in(page, running.url, "clean-co", "demo-clean-2024")
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


async def test_an_agency_officer_batch_checks_in_the_browser(gateway, browser, subtests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    ids = [demo.id for demo in DEMO_SUBJECTS]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["评优评先企业名单"])
    sheet.append(["序号", "主体名称", "统一社会信用代码"])
    for number, code in enumerate([*ids, "", "91110108MA01RXNE2X", ids[0]], start=1):
        sheet.append([number, f"名单主体{number}", code or None] if code else [number])
    listed = tmp_path / "名单.xlsx"
    book.save(listed)
    _, running, _ = gateway
    for earlier, width in enumerate(WIDTHS):  # the officer's jobs at the widths before this one
        with subtests.test(width=width):
            (tmp_path / width).mkdir()
            await _batch_check(running, browser, width, listed, earlier, tmp_path / width)


async def _batch_check(running: Any, browser: Any, width: str, listed: Path, earlier: int, tmp_path: Path) -> None:
    from gateway.batch.summary_pdf import attached_summary

    page = await open_tab(browser, width)
    await log_in(page, running.url, "agency", "demo-agency-2024")
    assert page.url.endswith("/agency")
    await check_page(page, "agency", reader="agency")
    assert await page.locator("#batch-jobs tbody tr").count() == earlier  # no job yet, no list of them
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
    await check_page(page, "agency-job", reader="agency")
    summary = await page.locator("#batch-summary").inner_text()
    counts = dict(zip(summary.split("\n")[::2], summary.split("\n")[1::2], strict=True))
    assert counts == {"名单行数": "7", "有记录": "2", "三地均无记录": "2", "不完整": "0", "代码无效": "1", "重复": "1",
                      "空行": "1"}, counts  # fmt: skip
    rows = page.locator("#batch-rows tbody tr")
    assert await rows.count() == 7
    assert (await rows.nth(0).locator("td").nth(2).inner_text()) == "名单主体1"  # the list's name beside the code
    assert (await rows.nth(6).locator("td").nth(9).inner_text()).startswith("与第 1 行重复")
    assert (await rows.nth(4).locator("td").nth(4).inner_text()) == "空行"
    await _shot(page, "10-agency-batch", width)
    table = await _download(page, "text=下载统计表（CSV）", tmp_path / "table.csv")
    lines = table.decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + 7 and "代码无效" in lines[-2] and "名单主体1" in lines[1]
    pdf = await _download(page, "text=下载签名汇总（PDF）", tmp_path / "summary.pdf")
    signed = attached_summary(pdf, running.service.keyring)
    assert signed["job_id"] == job_id and signed["counts"]["subjects"] == 7

    # Back on /agency, the job is listed with its counts and links.
    await page.goto(running.url + "/agency")
    await check_page(page, "agency-jobs", reader="agency")
    listed_jobs = page.locator("#batch-jobs tbody tr")
    assert await listed_jobs.count() == earlier + 1
    row_text = await listed_jobs.filter(has=page.locator(f"a[href='/agency/jobs/{job_id}']")).inner_text()
    assert (
        job_id.removeprefix("b_").upper() in row_text
        and "已完成" in row_text
        and "重复 1" in row_text
        and "空行 1" in row_text
    )
    await _shot(page, "11-agency-jobs", width)
    await page.click(f"#batch-jobs a[href='/agency/jobs/{job_id}']")
    await page.wait_for_load_state()
    assert page.url.endswith(f"/agency/jobs/{job_id}")
    await page.context.close()


async def test_an_objection_from_the_report_page_to_its_outcome(gateway, browser, subtests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, running, _ = gateway
    proof = tmp_path / "复议决定书.pdf"
    proof.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    # At each width the subject objects to the first record its new report lists: the one
    # revoked at the width before is no longer among them.
    for width in WIDTHS:
        with subtests.test(width=width):
            await _objection(running, browser, width, proof)


async def _objection(running: Any, browser: Any, width: str, proof: Path) -> None:
    base = running.url
    # The case pages name the attachment by its file name (复议决定书.pdf), and people by
    # their logins: the subject sees the officer's (办理人), the officer the filer's (提交人).
    seen_by_subject, seen_by_officer = ["pdf", "agency"], ["pdf", "records-co"]
    subject = await open_tab(browser, width)
    await log_in(subject, base, "records-co", "demo-records-2024")
    await subject.click("button:has-text('查询三地并出具报告')")
    await check_page(subject, "report-records", reader="records-co")
    code = (await subject.locator("dd.code").first.inner_text()).strip()
    await subject.locator("a:has-text('提出异议或信用修复申请')").first.click()
    await check_page(subject, "objection-form", reader="records-co")
    assert "异议与信用修复申请" in await subject.locator("h1").inner_text()
    decision_no = (await subject.locator(".card p").first.inner_text()).split("：", 1)[1]
    await subject.fill("#reason", "该处罚已被行政复议决定撤销")
    await subject.set_input_files("#attachment", str(proof))
    await _shot(subject, "20-objection-form", width)
    await subject.click("button:has-text('提交申请')")
    await check_page(subject, "objection-filed", reader="records-co", also=seen_by_subject)
    assert subject.url.split("?")[0].endswith("/objections")
    case = subject.locator("section.case").first  # newest first
    number = (await case.locator("h2").inner_text()).split(" ")[0]
    assert "处理中" in await case.inner_text() and "复议决定书.pdf" in await case.inner_text()
    await _shot(subject, "21-objection-filed", width)

    # A new report marks the record 异议处理中.
    await subject.goto(base + "/report")
    await subject.click("button:has-text('查询三地并出具报告')")
    await check_page(subject, "report-marked", reader="records-co")
    marked = subject.locator(".record", has=subject.locator(".objection-open"))
    assert await marked.count() == 1 and decision_no in await marked.inner_text()

    # An officer decides it in the portal, in the queue of the record's region.
    officer = await open_tab(browser, width)
    await log_in(officer, base, "agency", "demo-agency-2024")
    region = {"BJ": "beijing", "TJ": "tianjin", "HE": "hebei"}[number[:2]]
    await officer.goto(f"{base}/objections?region={region}")
    await check_page(officer, "cases", reader="agency", also=seen_by_officer)
    section = officer.locator("section.case", has=officer.locator(f"h2:has-text('{number}')"))
    async with officer.expect_download() as download:
        await section.locator("a:has-text('复议决定书.pdf')").click()
    assert (await (await download.value).path()).read_bytes() == proof.read_bytes()
    await section.locator("input[name=resolution][value=revoked]").check()
    await section.locator("textarea[name=note]").fill("经复核，原处罚决定已撤销")
    await _shot(officer, "22-objection-queue", width)
    await section.locator("button:has-text('办结')").click()
    await check_page(officer, "cases-closed", reader="agency", also=seen_by_officer)
    assert "state=closed" in officer.url and number in await officer.locator("main").inner_text()

    # The subject sees the outcome; the first report's verify page says it was superseded.
    await subject.goto(base + "/objections")
    await check_page(subject, "objection-outcome", reader="records-co", also=seen_by_subject)
    text = await subject.locator("section.case").first.inner_text()
    assert "已办结" in text and "已撤销" in text and "经复核，原处罚决定已撤销" in text
    await _shot(subject, "23-objection-outcome", width)
    for _ in range(100):
        await subject.goto(f"{base}/verify?code={code}")
        if "已更新" in await subject.locator("main").inner_text():
            break
        await subject.wait_for_timeout(100)
    assert "已更新" in await check_page(subject, "verify-superseded", reader="records-co")
    for tab in (subject, officer):
        await tab.context.close()
