"""People's habits on the portal: forms that come back filled in, the access history in
two halves and pages, the password change, the operator's footer and the skip link, and
a person's own full name."""

from __future__ import annotations

import html
import re
from typing import Any

import aiohttp
import pytest

from credit.audit import Action
from gateway.access import auth
from gateway.portal import PORTAL, pages
from gateway.settings import GatewaySettings
from tests.gateway.conftest import TODAY, issue_on

LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


def _main(page: str) -> str:
    """The text a reader sees in the page's main part."""
    inner = page.split("<main", 1)[1].split(">", 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", inner))


def _error_beside(page: str, field: str) -> str:
    """The words shown beside ``field`` (empty when there are none)."""
    found = re.search(rf'<span class="field-error" id="{field}-error"[^>]*>([^<]*)</span>', page)
    return html.unescape(found[1]) if found else ""


def _value(page: str, field: str) -> str | None:
    found = re.search(rf'<input id="{field}" name="{field}"[^>]*?value="([^"]*)"', page)
    return html.unescape(found[1]) if found else None


def _checked(page: str, name: str) -> str:
    found = re.search(rf'<input type="radio" name="{name}" value="([^"]+)" checked>', page)
    assert found, name
    return found[1]


class Browser:
    """A visitor of the portal without JavaScript: cookies and forms with their CSRF token."""

    def __init__(self, api: Any, session: str = "") -> None:
        self.api = api
        self.session = session

    def cookie(self, csrf: str = "") -> dict[str, str]:
        parts = [f"jjj_session={self.session}"] if self.session else []
        return {"Cookie": "; ".join(parts + ([f"jjj_csrf={csrf}"] if csrf else []))}

    async def get(self, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
        status, page, reply = await self.api.call("GET", path, headers=self.cookie(), allow_redirects=False)
        return int(status), str(page), reply

    async def post(self, path: str, fields: dict[str, Any]) -> tuple[int, str, aiohttp.ClientResponse]:
        _, page, _ = await self.get("/verify")
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found
        csrf = found[1]
        data = aiohttp.FormData()
        for name, value in {**fields, "csrf": csrf}.items():
            if isinstance(value, tuple):
                data.add_field(name, value[1], filename=value[0], content_type="application/octet-stream")
            else:
                data.add_field(name, str(value))
        status, body, reply = await self.api.call(
            "POST", path, data=data, headers=self.cookie(csrf), allow_redirects=False
        )
        return int(status), str(body), reply


async def _signed_in(api: Any, username: str, password: str) -> Browser:
    return Browser(api, await api.login(username, password))


# 1. Forms that come back


async def test_the_report_form_comes_back_filled_in(gateway: Any) -> None:
    api, _, _ = gateway
    admin = await _signed_in(api, "admin", "demo-admin-2024")
    typed = "91350100M000100Y4X"  # the check character should be 3
    status, page, _ = await admin.post("/report", {"subject": typed, "years": "5", "profile": "tianjin-2023"})
    assert status == 400
    assert _value(page, "subject") == typed and _checked(page, "years") == "5"
    assert "校验码错误" in _error_beside(page, "subject")
    assert 'aria-invalid="true" aria-describedby="subject-error"' in page
    assert not LATIN_WORD.search(_main(page).replace(typed, "")), _main(page)


async def test_the_grant_form_comes_back_filled_in(gateway: Any) -> None:
    api, _, _ = gateway
    company = await _signed_in(api, "records-co", "demo-records-2024")
    sent = {
        "purpose": "招标投标",
        "grantee_org": "91120000MA06QX8B3J",
        "days": "45",
        "max_uses": "3",
        "mode": "fresh",
        "years": "5",
    }
    status, page, _ = await company.post("/grants/preview", sent)
    assert status == 400
    assert _value(page, "purpose") == "招标投标" and _value(page, "grantee_org") == "91120000MA06QX8B3J"
    assert _value(page, "days") == "45" and _value(page, "max_uses") == "3"
    assert _checked(page, "mode") == "fresh" and _checked(page, "years") == "5"
    assert "1 至 30 天" in _error_beside(page, "days") and not _error_beside(page, "purpose")
    # A field whose core words are English only gets Chinese ones.
    status, page, _ = await company.post("/grants/preview", {**sent, "days": "7", "grantee_org": "9112000"})
    assert status == 400 and _error_beside(page, "grantee_org") and _value(page, "grantee_org") == "9112000"
    assert not LATIN_WORD.search(_main(page)), _main(page)


async def test_the_objection_form_keeps_the_reason(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    company = await _signed_in(api, "records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", company.session, json={"years": 3})
    assert status == 201
    record = next(
        rec["record_id"]
        for line in body["report"]["lines"]
        for cell in line["cells"]
        for rec in cell.get("records", [])
    )
    reason = "该处罚已于 2024 年撤销，附撤销决定书。\n第二行说明。"
    fields = {"report_no": body["report_no"], "record_id": record, "kind": "credit_repair", "reason": reason}
    status, page, _ = await company.post("/objections", {**fields, "attachment": ("proof.pdf", b"not a pdf at all")})
    assert status == 400
    kept = re.search(r'<textarea id="reason"[^>]*>([^<]*)</textarea>', page)
    assert kept and html.unescape(kept[1]) == reason
    assert _checked(page, "kind") == "credit_repair"
    assert _error_beside(page, "attachment") and "请重新选择" in _main(page)


async def test_the_code_forms_keep_the_code(gateway: Any) -> None:
    api, _, _ = gateway
    visitor = Browser(api)
    status, page, _ = await visitor.get("/verify?code=ABCD-1234")
    assert status == 400 and _value(page, "code") == "ABCD-1234"
    assert "核验码应为 17 位" in _error_beside(page, "code") and 'section class="verification' not in page
    status, page, _ = await visitor.post("/verify", {})
    assert status == 400 and "16 MB" in _error_beside(page, "file")
    bank = await _signed_in(api, "bank", "demo-bank-2024")
    status, page, _ = await bank.post("/g", {"code": "NOPE-NOPE"})
    assert status == 400 and _value(page, "code") == "NOPE-NOPE"
    assert "授权码以 SQ 开头" in _error_beside(page, "code")
    assert not LATIN_WORD.search(_main(page).replace("NOPE-NOPE", "")), _main(page)


async def test_login_and_agency_forms_keep_what_was_typed(gateway: Any) -> None:
    api, _, _ = gateway
    status, page, _ = await Browser(api).post("/login", {"username": "clean-co", "password": "wrong-password-1"})
    assert status == 401 and _value(page, "username") == "clean-co"
    assert "wrong-password-1" not in page  # a password never comes back
    assert "用户名或密码错误" in _main(page) and not LATIN_WORD.search(_main(page).replace("clean-co", ""))
    officer = await _signed_in(api, "agency", "demo-agency-2024")
    status, page, _ = await officer.post(
        "/agency", {"purpose": "评优评先资格审查", "years": "5", "file": ("a.csv", b"")}
    )
    assert status == 400 and _value(page, "purpose") == "评优评先资格审查" and _checked(page, "years") == "5"
    assert _error_beside(page, "file")


# 2. The access history


async def test_history_shows_others_first_then_own_a_page_at_a_time(gateway: Any, monkeypatch: Any) -> None:
    api, running, _ = gateway
    monkeypatch.setattr(pages, "HISTORY_PER_PAGE", 2)
    issue_on(running, TODAY)
    company = await _signed_in(api, "records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", company.session, json={"years": 3})
    assert status == 201
    assert (await company.get(f"/reports/{body['report_no']}"))[0] == 200  # one of the account's own actions
    admin = await api.login("admin", "demo-admin-2024")
    for _ in range(3):
        status, _, _ = await api.call("GET", f"/api/v1/reports/{body['report_no']}", admin)
        assert status == 200

    rows = lambda page: re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", page)  # noqa: E731
    status, first, _ = await company.get("/history")
    assert status == 200 and 'aria-current="page">他人查阅' in first
    assert [actor for _, actor in rows(first)] == ["admin", "admin"]
    assert "下一页" in first and "上一页" not in first
    _, second, _ = await company.get("/history?page=2")
    assert [actor for _, actor in rows(second)] == ["admin"] and "下一页" not in second
    # Beijing time, in the Chinese format.
    assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}:\d{2}", at) for at, _ in rows(first))

    _, own, _ = await company.get("/history?view=own")
    assert 'aria-current="page">本人操作' in own and 'href="/history?view=own&amp;page=2"' in own
    assert {actor for _, actor in rows(own)} == {"records-co"}
    _, own_later, _ = await company.get("/history?view=own&page=2")
    assert {actor for _, actor in rows(own_later)} == {"records-co"}
    everything = set(re.findall(r"<td>(出具报告|登录|查看报告)</td>", own + own_later))
    assert {"出具报告", "登录"} <= everything


# 3. The password change


async def test_a_password_change_ends_the_other_sessions(gateway: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(auth, "ENDED_REFRESH", 0.0)
    api, _, _ = gateway
    here = await _signed_in(api, "li-hua", "demo-person-2024")
    elsewhere = await api.login("li-hua", "demo-person-2024")
    status, page, _ = await here.get("/account/password")
    assert status == 200 and 'type="password"' in page

    new = "a-new-secret-for-li"
    tries = [
        ({"current_password": "demo-person-2024", "new_password": "short", "new_password_again": "short"},
         "new_password", "至少需要 12 个字符"),
        ({"current_password": "demo-person-2024", "new_password": "li-hua-forever-2025",
          "new_password_again": "li-hua-forever-2025"}, "new_password", "不能包含用户名"),
        ({"current_password": "demo-person-2024", "new_password": new, "new_password_again": new + "x"},
         "new_password_again", "不一致"),
        ({"current_password": "not-the-password", "new_password": new, "new_password_again": new},
         "current_password", "当前密码不正确"),
    ]  # fmt: skip
    for fields, field, words in tries:
        status, page, _ = await here.post("/account/password", fields)
        assert status == 400 and words in _error_beside(page, field), (field, _main(page))
        assert all(value not in page for value in fields.values())  # passwords never come back
    assert await api.login("li-hua", "demo-person-2024")  # nothing changed yet

    status, _, reply = await here.post(
        "/account/password", {"current_password": "demo-person-2024", "new_password": new, "new_password_again": new}
    )
    assert status == 303 and reply.headers["Location"] == "/account/password?done=1"
    fresh = reply.cookies["jjj_session"].value
    # The other session has ended; this browser carries on with a new one.
    assert (await api.call("GET", "/api/v1/reports/JJJ-NONE", elsewhere))[0] == 401
    assert (await api.call("GET", "/api/v1/reports/JJJ-NONE", here.session))[0] == 401
    assert (await api.call("GET", "/api/v1/reports/JJJ-NONE", fresh))[0] == 404
    here.session = fresh
    status, page, _ = await here.get("/account/password?done=1")
    assert status == 200 and "密码已修改" in page
    status, _, _ = await api.call("POST", "/api/v1/login", json={"username": "li-hua", "password": "demo-person-2024"})
    assert status == 401
    assert await api.login("li-hua", new)
    # Audited, done and refused, and shown among the account's own actions.
    _, own, _ = await here.get("/history?view=own")
    assert "<td>修改密码</td>" in own and "已拒绝" in own
    _, others, _ = await here.get("/history")
    assert "修改密码" not in _main(others)


async def test_wrong_current_passwords_are_limited(gateway: Any) -> None:
    api, _, _ = gateway
    here = await _signed_in(api, "clean-co", "demo-clean-2024")
    new = {"new_password": "another-good-secret", "new_password_again": "another-good-secret"}
    statuses = [
        (await here.post("/account/password", {"current_password": f"guess-{i}", **new}))[0]
        for i in range(auth.CHANGE_TRIES)
    ]
    assert statuses == [400] * auth.CHANGE_TRIES
    status, page, _ = await here.post("/account/password", {"current_password": "demo-clean-2024", **new})
    assert status == 429 and "尝试次数过多" in _main(page)
    assert await api.login("clean-co", "demo-clean-2024")


def test_the_cli_and_the_portal_share_the_password_rule() -> None:
    auth.check_new_password("a-long-enough-secret", username="acme")
    for weak in ("short", "x" * (auth.MAX_PASSWORD + 1), "my-ACME-password-1"):
        with pytest.raises(auth.InvalidInput):
            auth.check_new_password(weak, username="acme")


# 4–6. Every page: the skip link first, the operator in the footer


async def test_every_page_has_the_skip_link_and_the_operator(gateway: Any) -> None:
    api, running, _ = gateway
    operator = running.runner.app[PORTAL].operator
    assert operator == running.settings.operator()
    person = await _signed_in(api, "li-hua", "demo-person-2024")
    for who, path in [(Browser(api), "/"), (Browser(api), "/verify"), (Browser(api), "/no-such-page"),
                      (person, "/report"), (person, "/history"), (person, "/account/password")]:  # fmt: skip
        _, page, _ = await who.get(path)
        body = page.split("<body>", 1)[1].lstrip()
        assert body.startswith('<a class="skip-link" href="#main">跳到主要内容</a>'), path
        assert '<main id="main"' in page
        footer = html.unescape(page.split('<footer class="site">', 1)[1])
        for words in (operator.name, operator.address, operator.phone, operator.icp):
            assert words in footer, (path, words)


def test_the_operator_comes_from_the_environment() -> None:
    settings = GatewaySettings.from_env(
        {
            "JJJ_GATEWAY_OPERATOR_NAME": "天津市公共信用信息中心",
            "JJJ_GATEWAY_OPERATOR_ADDRESS": "天津市河西区友谊路 1 号",
            "JJJ_GATEWAY_OPERATOR_PHONE": "022-12345",
            "JJJ_GATEWAY_OPERATOR_ICP": "津ICP备12345678号",
        }
    )
    operator = settings.operator()
    assert (operator.name, operator.address, operator.phone, operator.icp) == (
        "天津市公共信用信息中心",
        "天津市河西区友谊路 1 号",
        "022-12345",
        "津ICP备12345678号",
    )
    default = GatewaySettings.from_env({}).operator()
    assert "演示" in default.name and default.icp


async def test_the_report_page_has_a_print_button_allowed_by_its_hash(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    company = await _signed_in(api, "clean-co", "demo-clean-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", company.session, json={"years": 3})
    assert status == 201
    _, page, reply = await company.get(f"/reports/{body['report_no']}")
    assert '<button type="button" class="print-button" onclick="print()">打印本页</button>' in page
    policy = reply.headers["Content-Security-Policy"]
    assert f"script-src 'unsafe-hashes' 'sha256-{pages._PRINT_HASH}'" in policy
    assert "'unsafe-inline'" not in policy


# 8. A person's own full name


async def test_a_person_sees_their_own_full_name_and_others_the_masked_one(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    person = await _signed_in(api, "li-hua", "demo-person-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", person.session, json={"years": 3})
    assert status == 201
    assert body["report"]["subject"]["name"] == "李*华"  # the signed report keeps the published name
    subject_id = body["report"]["subject"]["id"]
    _, own, _ = await person.get(f"/reports/{body['report_no']}")
    assert f"李建华（{subject_id}）" in own and "李*华" not in own
    # Everyone else sees the name masked: an administrator, the public verify page, and the
    # grant preview (what the grantee will see).
    admin = await _signed_in(api, "admin", "demo-admin-2024")
    _, theirs, _ = await admin.get(f"/reports/{body['report_no']}")
    assert "李*华" in theirs and "李建华" not in theirs
    _, public, _ = await Browser(api).get(f"/verify?code={body['verification_code']}")
    assert "李建华" not in public
    status, preview, _ = await person.post("/grants/preview", {"purpose": "求职", "days": "7", "max_uses": "1"})
    assert status == 200 and "李*华" in preview and "李建华" not in preview


async def test_a_persons_own_pdf_prints_their_full_name_and_still_verifies(gateway: Any) -> None:
    from gateway.demo import DEMO_BANK
    from gateway.reports.pdf import check_pdf
    from tests.gateway.test_report_subject import pdf_text

    api, running, _ = gateway
    issue_on(running, TODAY)
    service = running.service
    person = await _signed_in(api, "li-hua", "demo-person-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", person.session, json={"years": 3})
    assert status == 201
    pdf_path = f"/reports/{body['report_no']}/report.pdf"

    async def pdf_of(who: Browser, path: str) -> bytes:
        status, data, reply = await api.fetch("GET", path, headers=who.cookie())
        assert status == 200 and reply.content_type == "application/pdf"
        return data

    own = await pdf_of(person, pdf_path)
    first = pdf_text(own)[0]
    assert "信用主体李建华" in first and "姓名李建华" in first and "李*华" not in first
    # The signed report inside is the one issued, the name as published; the organisation's
    # signature covers the full name, and verification prints the same pages with it.
    printed = check_pdf(own, service.keyring, trust=service.seal_trust)
    assert printed.document == body["report"] and printed.document["subject"]["name"] == "李*华"
    assert printed.holder_name == "李建华"

    # Everyone else's copy prints the name as published: an administrator's, and the
    # copy a bank downloads with the person's grant.
    admin = await _signed_in(api, "admin", "demo-admin-2024")
    theirs = await pdf_of(admin, pdf_path)
    assert "信用主体李*华" in pdf_text(theirs)[0] and "李建华" not in pdf_text(theirs)[0]
    assert check_pdf(theirs, service.keyring, trust=service.seal_trust).holder_name == ""
    status, preview, _ = await api.call(
        "POST", "/api/v1/grants/preview", person.session,
        json={"purpose": "求职", "days": 7, "max_uses": 1, "grantee_org": DEMO_BANK.code},
    )  # fmt: skip
    status, created, _ = await api.call(
        "POST", "/api/v1/grants", person.session, json={"preview": preview["preview"], "confirm": True}
    )
    assert status == 201, created
    bank = await _signed_in(api, "bank", "demo-bank-2024")
    status, _, reply = await bank.post("/g", {"code": created["code"]})
    assert status == 303
    granted = await pdf_of(bank, reply.headers["Location"] + "/report.pdf")
    assert "李*华" in pdf_text(granted)[0] and "李建华" not in pdf_text(granted)[0]

    # Handed in on the verify page, the person's copy is genuine and says whose name it prints.
    status, page, _ = await Browser(api).post("/verify", {"file": ("report.pdf", own)})
    assert status == 200 and "报告真实有效" in page
    assert re.search(r'<dd id="holder-name">李建华（', page)


async def test_a_person_without_a_full_name_on_the_account_sees_the_published_one(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    account = await running.registry.account("li-hua")
    assert account is not None
    from dataclasses import replace

    running.registry.add_account(replace(account, full_name=None))
    person = await _signed_in(api, "li-hua", "demo-person-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", person.session, json={"years": 3})
    assert status == 201
    _, own, _ = await person.get(f"/reports/{body['report_no']}")
    assert "李*华" in own


def test_the_audit_vocabulary_has_the_password_change() -> None:
    from credit import labels

    assert labels.ACTION[Action.PASSWORD_CHANGED] == "修改密码"
