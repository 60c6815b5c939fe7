"""The bank's side of a grant, against a real gateway over three real nodes: grants made
out to an organisation, redemptions that reopen without another use, the redeemed report's
PDF, JWS and JSON for the redeemer only, previews that issue nothing, the grantor's
confirmation and revocation, and what the public verify page shows."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from yarl import URL

from credit.demo import DEMO_SUBJECTS
from credit.identifiers import make_uscc
from credit.regions import Region
from gateway.access.auth import hash_password
from gateway.demo import DEMO_BANK
from gateway.registry import Account, Organisation, reports
from gateway.reports.pdf import verify_pdf
from tests.gateway.conftest import Api
from tests.gateway.latin import latin_words

TERMS = {"purpose": "融资信贷", "days": 7, "max_uses": 2}
OTHER_BANK = Organisation(make_uscc("91120000MA06QX9C4"), "另一家示范银行股份有限公司")


class Fetched(NamedTuple):
    body: bytes
    content_type: str


class Browser:
    """A person's browser without JavaScript: cookies kept, forms posted with their CSRF
    token (the answer to a post is not followed, so that its redirect can be read)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str) -> tuple[int, str, Fetched]:
        """The status, the page's text (empty for a download) and what was fetched."""
        async with self.http.get(self.base + path) as reply:
            body = await reply.read()
            text = body.decode("utf-8", "replace") if reply.content_type.startswith("text/") else ""
            return reply.status, text, Fetched(body, reply.content_type)

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, aiohttp.ClientResponse]:
        if "jjj_csrf" not in self._cookies():
            await self.get("/verify")  # any page hands out the form token
        data = {**form, "csrf": self._cookies()["jjj_csrf"].value}
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as reply:
            return reply.status, await reply.text(), reply

    def _cookies(self) -> Any:
        return self.http.cookie_jar.filter_cookies(URL(self.base + "/"))

    async def login(self, username: str, password: str) -> None:
        status, _, reply = await self.post("/login", {"username": username, "password": password})
        assert status == 303 and reply.headers["Location"] == "/report"


@pytest.fixture
async def browsers(gateway: Any) -> AsyncIterator[Any]:
    _, running, _ = gateway
    opened: list[Browser] = []

    def open_one() -> Browser:
        opened.append(Browser(running.url))
        return opened[-1]

    yield open_one
    for browser in opened:
        await browser.http.close()


def _add_account(running: Any, username: str, org: Organisation) -> None:
    running.registry.add_organisation(org)
    running.registry.add_account(
        Account(username, hash_password(f"{username}-password"), "third_party", None, org.name, org_code=org.code)
    )


def _words(html: str, start: str, end: str) -> list[str]:
    """The Latin-letter words a person reads in the part of ``html`` from ``start`` to ``end``."""
    part = html.split(start, 1)[1].split(end, 1)[0]
    return latin_words(re.sub(r"<[^>]+>", " ", part))


def _registered(running: Any) -> int:
    with running.registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(reports)).scalar_one())


async def _grant(api: Api, token: str, **terms: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", token, json={**TERMS, **terms})
    assert status == 200, preview
    status, created, _ = await api.call(
        "POST", "/api/v1/grants", token, json={"preview": preview["preview"], "confirm": True}
    )
    assert status == 201, created
    return preview, created


async def _uses(api: Api, owner: str) -> int:
    _, listed, _ = await api.call("GET", "/api/v1/grants", owner)
    return int(listed["grants"][0]["uses"])


async def test_reloading_a_redemption_uses_nothing_and_only_the_redeemer_opens_it(gateway, browsers) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    _, created = await _grant(api, owner, grantee_org=DEMO_BANK.code)
    bank = browsers()
    await bank.login("bank", "demo-bank-2024")
    status, _, reply = await bank.post("/g", {"code": created["code"]})
    assert status == 303
    address = reply.headers["Location"]
    assert re.fullmatch(r"/g/r/r_[A-Za-z0-9_-]{32}", address), address
    assert await _uses(api, owner) == 1
    before = _registered(running)
    for _ in range(3):
        status, page, _ = await bank.get(address)
        assert status == 200 and "融资信贷" in page and "剩余 1 次" in page
    assert _words(page, '<main id="main" tabindex="-1">', '<section class="verdict') == []
    assert await _uses(api, owner) == 1 and _registered(running) == before
    # The bank finds it again from its code form.
    _, form_page, _ = await bank.get("/g")
    assert f'href="{address}"' in form_page and created["grant"]["report_no"] in form_page
    assert _words(form_page, '<main id="main" tabindex="-1">', "</main>") == []

    # Nobody else opens it: another bank, the subject, someone not signed in.
    _add_account(running, "other-bank", OTHER_BANK)
    other = browsers()
    await other.login("other-bank", "other-bank-password")
    assert (await other.get(address))[0] == 403
    subject = browsers()
    await subject.login("clean-co", "demo-clean-2024")
    assert (await subject.get(address))[0] == 403
    assert (await browsers().get(address))[0] == 403
    assert (await bank.get("/g/r/r_" + "A" * 32))[0] == 404

    # Revoked, the grant no longer opens what it gave.
    status, _, _ = await api.call("POST", f"/api/v1/grants/{created['grant']['grant_id']}/revoke", owner)
    assert status == 200
    status, page, _ = await bank.get(address)
    assert status == 403 and "授权已被撤销" in page


async def test_an_anonymous_holder_reopens_what_its_browser_redeemed(gateway, browsers) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    owner = await api.login("records-co", "demo-records-2024")
    _, created = await _grant(api, owner, max_uses=1)
    holder = browsers()
    status, _, reply = await holder.post("/g", {"code": created["code"]})
    assert status == 303
    address = reply.headers["Location"]
    for _ in range(2):
        status, page, _ = await holder.get(address)
        assert status == 200 and "剩余 0 次" in page
    assert await _uses(api, owner) == 1
    # The link alone is not enough: another browser does not hold the secret.
    assert (await browsers().get(address))[0] == 403
    status, _, pdf = await holder.get(address + "/report.pdf")
    assert status == 200 and pdf.content_type == "application/pdf"


async def test_the_redeemer_downloads_the_report_and_no_other(gateway, browsers) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("records-co", "demo-records-2024")
    _, created = await _grant(api, owner, grantee_org=DEMO_BANK.code)
    report_no = created["grant"]["report_no"]
    status, unshared, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert status == 201
    bank = browsers()
    await bank.login("bank", "demo-bank-2024")
    # Before redeeming, the report is not the bank's.
    assert (await bank.get(f"/reports/{report_no}/report.pdf"))[0] == 403
    _, _, reply = await bank.post("/g", {"code": created["code"]})
    address = reply.headers["Location"]
    _, page, _ = await bank.get(address)
    for suffix in ("pdf", "jws", "json"):
        assert f'href="{address}/report.{suffix}"' in page

    status, _, pdf = await bank.get(address + "/report.pdf")
    assert status == 200 and pdf.content_type == "application/pdf"
    assert verify_pdf(pdf.body, running.service.keyring, trust=running.service.seal_trust)["report_no"] == report_no
    status, _, jws = await bank.get(address + "/report.jws")
    assert status == 200 and jws.content_type == "application/jose"
    status, _, data = await bank.get(address + "/report.json")
    assert status == 200 and data.content_type == "application/json"
    # The report's own addresses open for the bank too (the rule is the policy's), and the API.
    for suffix in ("pdf", "jws", "json"):
        status, _, same = await bank.get(f"/reports/{report_no}/report.{suffix}")
        assert status == 200, suffix
    assert same.body == data.body
    bank_token = await api.login("bank", "demo-bank-2024")
    status, body, _ = await api.call("GET", f"/api/v1/reports/{report_no}", bank_token)
    assert status == 200 and body["jws"] == jws.body.decode()
    # Another report of the same subject stays closed to it.
    for suffix in ("pdf", "jws", "json"):
        assert (await bank.get(f"/reports/{unshared['report_no']}/report.{suffix}"))[0] == 403
    assert (await api.call("GET", f"/api/v1/reports/{unshared['report_no']}", bank_token))[0] == 403
    # The report page offers the bank no objections and no grants: those are the subject's.
    status, report_page, _ = await bank.get(f"/reports/{report_no}")
    assert status == 200 and "/objections/new" not in report_page and 'href="/grants"' not in report_page


async def test_a_grant_to_an_organisation_is_for_its_accounts_only(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    _add_account(running, "bank-branch", DEMO_BANK)  # a second account of the demo bank
    _add_account(running, "other-bank", OTHER_BANK)
    preview, created = await _grant(api, owner, grantee_org=DEMO_BANK.code, max_uses=3)
    assert preview["grantee_org"] == {"code": DEMO_BANK.code, "name": DEMO_BANK.name}
    assert created["grantee_org"]["name"] == DEMO_BANK.name and created["grant"]["grantee_org"] == DEMO_BANK.code
    code = created["code"]

    other = await api.login("other-bank", "other-bank-password")
    status, body, _ = await api.call("GET", f"/api/v1/grants/{code}/report", other)
    assert status == 403 and "named grantee" in body["detail"]
    assert (await api.call("GET", f"/api/v1/grants/{code}/report"))[0] == 403
    person = await api.login("li-hua", "demo-person-2024")
    assert (await api.call("GET", f"/api/v1/grants/{code}/report", person))[0] == 403

    branch = await api.login("bank-branch", "bank-branch-password")
    status, seen, reply = await api.call("GET", f"/api/v1/grants/{code}/report", branch)
    assert status == 200 and seen["report_no"] == created["grant"]["report_no"]
    redemption = f"/api/v1/redemptions/{seen['redemption_id']}"
    assert reply.headers["Content-Location"] == redemption
    # Reading the redemption again uses nothing; any account of the bank reads it.
    bank = await api.login("bank", "demo-bank-2024")
    for token in (branch, bank):
        status, again, _ = await api.call("GET", redemption, token)
        assert status == 200 and again["jws"] == seen["jws"] and again["grant"]["uses_left"] == 2
    assert (await api.call("GET", redemption, other))[0] == 403
    assert (await api.call("GET", redemption))[0] == 401
    assert await _uses(api, owner) == 1

    # An organisation with no accounts here, and two grantees at once, are refused.
    stranger = make_uscc("91110000MA01AAAA0")
    for terms, field in (
        ({"grantee_org": stranger}, "grantee_org"),
        ({"grantee_org": "91120000MA06QX8B3X"}, "grantee_org"),  # a wrong check character
        ({"grantee_org": DEMO_BANK.code, "grantee": "bank"}, "grantee_org"),
    ):
        status, body, _ = await api.call("POST", "/api/v1/grants/preview", owner, json={**TERMS, **terms})
        assert status == 400 and body["invalid-params"][0]["name"] == field, body


async def test_previews_issue_no_report_and_a_cancelled_one_leaves_none(gateway, browsers) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    before = _registered(running)
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", owner, json=TERMS)
    assert status == 200 and preview["report"]["report_no"] == "" and preview["report"]["verification_code"] == ""
    assert "jws" not in preview
    clerk = browsers()
    await clerk.login("clean-co", "demo-clean-2024")
    status, page, _ = await clerk.post("/grants/preview", {"purpose": "招标投标", "days": "7", "max_uses": "1"})
    assert status == 200 and "尚未出具" in page and "取消不会留下任何报告" in page
    # The preview shows what will be shared: whose, under which profile, which records, which period.
    subject = next(s for s in DEMO_SUBJECTS if s.key == "clean")
    assert subject.id in page and "北京、天津、河北三地的行政处罚" in page and "查询区间" in page
    assert _words(page, '<main id="main" tabindex="-1">', "<h2>报告内容预览") == []
    assert _registered(running) == before  # two previews, neither confirmed: nothing registered

    # A fresh grant issues nothing on confirmation either; a fixed one issues its one report.
    await _grant(api, owner, mode="fresh")
    assert _registered(running) == before
    await _grant(api, owner)
    assert _registered(running) == before + 1


async def test_the_confirmation_names_the_grantee_and_revoking_says_so(browsers) -> None:  # type: ignore[no-untyped-def]
    clerk = browsers()
    await clerk.login("clean-co", "demo-clean-2024")
    status, page, _ = await clerk.post(
        "/grants/preview", {"purpose": "融资信贷", "grantee_org": DEMO_BANK.code, "days": "7", "max_uses": "2"}
    )
    assert status == 200
    grantee = re.search(r'<dd id="grantee">(.*?)</dd>', page)
    assert grantee is not None and DEMO_BANK.name in grantee[1] and DEMO_BANK.code in grantee[1]
    token = re.search(r'name="preview" value="([^"]+)"', page)
    assert token is not None
    status, granted, _ = await clerk.post("/grants/confirm", {"preview": token[1], "confirm": "yes"})
    assert status == 200
    named = re.search(r'id="granted-to">(.*?)</p>', granted)
    assert named is not None and DEMO_BANK.name in named[1] and DEMO_BANK.code in named[1]
    code = re.search(r'id="grant-code">([^<]+)<', granted)
    assert code is not None
    assert _words(granted, '<main id="main" tabindex="-1">', "</main>") == []
    # The slip to print or keep: a PDF with the code, and the QR code as a PNG.
    slip = re.search(r'id="slip-pdf" href="data:application/pdf;base64,([^"]+)"', granted)
    assert slip is not None
    text = PdfReader(io.BytesIO(base64.b64decode(slip[1]))).pages[0].extract_text()
    assert code[1] in text and DEMO_BANK.code in text
    png = re.search(r'id="qr-png" href="data:image/png;base64,([^"]+)" download="[^"]+\.png"', granted)
    assert png is not None and base64.b64decode(png[1]).startswith(b"\x89PNG")

    _, listing, _ = await clerk.get("/grants")
    grant_id = re.search(r'action="/grants/(g_[0-9a-f]+)/revoke"', listing)
    assert grant_id is not None and DEMO_BANK.name in listing
    status, _, reply = await clerk.post(f"/grants/{grant_id[1]}/revoke", {})
    assert status == 303 and reply.headers["Location"] == f"/grants?revoked={grant_id[1]}#mine"
    _, after, _ = await clerk.get(reply.headers["Location"])
    message = re.search(r'<p class="message info" role="status">(.*?)</p>', after)
    assert message is not None and "已撤销" in message[1] and "融资信贷" in message[1] and DEMO_BANK.name in message[1]
    assert _words(after, '<main id="main" tabindex="-1">', "</main>") == []
    # Someone else's grant id shows no such notice.
    _, odd, _ = await clerk.get("/grants?revoked=g_0000000000000000")
    assert "已撤销用途" not in odd


async def test_verify_shows_what_the_report_certifies(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    status, issued, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert status == 201
    document = issued["report"]
    status, page, _ = await api.call("GET", f"/verify?code={issued['verification_code']}")
    assert status == 200
    facts = page.split('<dl class="facts">', 1)[1].split("</dl>", 1)[0]
    assert document["subject"]["id"] in facts and document["subject"]["name"] in facts
    assert "查询区间" in facts and document["title"] in facts and "存在违法违规记录" in facts
    for region in Region:
        assert f"{region.name_zh}：已应答" in facts, region
    assert latin_words(re.sub(r"<[^>]+>", " ", facts)) == []  # the profile by its title, not its id
    status, summary, _ = await api.call("GET", f"/api/v1/verify/{issued['verification_code']}")
    assert [r["status"] for r in summary["summary"]["regions"]] == ["answered"] * 3

    # A region that did not answer is shown as such.
    await nodes[Region.HEBEI].node.stop(0)
    status, partial, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert status == 201
    _, page, _ = await api.call("GET", f"/verify?code={partial['verification_code']}")
    assert "河北：暂不可用" in page and "北京：已应答" in page
