"""A report names its subject from the register of market entities of the region the
subject belongs to — in the JSON, on the report page, in the PDF and on the verify page —
or says in words why it cannot."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from credit.demo import DEMO_SUBJECTS
from credit.identifiers import make_uscc
from credit.policy import Principal, Role
from credit.regions import Region
from credit.registers import NOT_FOR_PERSONS, SubjectRegistration
from gateway.server import start_gateway
from gateway.settings import GatewaySettings
from tests.gateway.conftest import TODAY, issue_on
from tests.memory_node import MemoryNode, unavailable

SUBJECTS = {demo.key: demo for demo in DEMO_SUBJECTS}
UNKNOWN = make_uscc("91130102MA0ABCDE2")  # a Hebei code no register holds


def visible(page: str) -> str:
    """A page's text without tags or whitespace."""
    return "".join(re.sub(r"<[^>]+>", " ", page).split())


def pdf_text(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return ["".join(page.get_textpage().get_text_range().split()) for page in document]
    finally:
        document.close()


async def issued(api: Any, token: str, **body: Any) -> dict[str, Any]:
    status, answer, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3, **body})
    assert status == 201, answer
    return dict(answer)


async def test_a_clean_companys_report_names_it_from_its_home_regions_register(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    clean = SUBJECTS["clean"]
    token = await api.login("clean-co", "demo-clean-2024")
    body = await issued(api, token)
    subject = body["report"]["subject"]
    assert body["verdict"] == "clean"  # no record anywhere, yet named
    assert subject["name"] == clean.name == "天津清源科技有限公司"
    register = subject["register"]
    assert register["name"] == clean.name
    assert (register["region"], register["region_name"]) == ("tianjin", "天津")  # 91120116…: 滨海新区
    assert register["legal_representative"] and register["status"] == "存续"
    assert register["address"].startswith("天津市滨海新区") and register["authority"] == "天津市滨海新区市场监督管理局"
    assert date.fromisoformat(register["established_on"]) < TODAY
    assert "register_note" not in subject

    cookie = {"Cookie": f"jjj_session={token}"}
    _, page, _ = await api.call("GET", f"/reports/{body['report_no']}", headers=cookie)
    text = visible(page)
    assert text.index("主体登记信息") < text.index("三地均无违法违规记录")  # shown first
    for shown in (clean.name, register["legal_representative"], register["address"], "天津市场主体登记信息"):
        assert shown in text
    assert "—（" not in text

    status, pdf, reply = await api.fetch("GET", f"/reports/{body['report_no']}/report.pdf", headers=cookie)
    assert status == 200 and reply.content_type == "application/pdf"
    first = pdf_text(pdf)[0]
    assert "主体登记信息" in first and first.index("主体登记信息") < first.index("一、基本信息")
    for shown in (clean.name, register["legal_representative"], register["address"], "天津市场主体登记信息"):
        assert shown in first
    assert f"信用主体{clean.name}" in first

    # What a verified report certifies: the name and the registration details.
    _, verify_page, _ = await api.call("GET", f"/verify?code={body['verification_code']}")
    text = visible(verify_page)
    for shown in (clean.name, register["legal_representative"], register["address"], "天津市场主体登记信息"):
        assert shown in text
    status, verdict, _ = await api.call("POST", "/api/v1/verify", data=body["jws"])
    assert status == 200 and verdict["summary"]["register"] == register
    assert verdict["summary"]["subject_name"] == clean.name


async def test_a_subject_no_register_knows_is_said_so_in_words(gateway: Any) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    token = await api.login("admin", "demo-admin-2024")
    body = await issued(api, token, subject=UNKNOWN)
    subject = body["report"]["subject"]
    assert subject["name"] == "" and subject["register"] is None
    assert subject["register_note"] == "三地市场主体登记信息中均未查到该主体"

    cookie = {"Cookie": f"jjj_session={token}"}
    _, page, _ = await api.call("GET", f"/reports/{body['report_no']}", headers=cookie)
    text = visible(page)
    assert "登记信息三地市场主体登记信息中均未查到该主体" in text
    assert "—（" not in text
    _, pdf, _ = await api.fetch("GET", f"/reports/{body['report_no']}/report.pdf", headers=cookie)
    first = pdf_text(pdf)[0]
    assert "登记信息三地市场主体登记信息中均未查到该主体" in first
    assert "信用主体—" not in first
    _, verify_page, _ = await api.call("GET", f"/verify?code={body['verification_code']}")
    assert "三地市场主体登记信息中均未查到该主体" in visible(verify_page)


@pytest.mark.parametrize(("key", "name"), [("person", "李*华"), ("clean_person", "")])
async def test_a_person_is_named_from_records_or_told_registers_do_not_cover_persons(
    gateway: Any, key: str, name: str
) -> None:
    api, running, _ = gateway
    issue_on(running, TODAY)
    token = await api.login("admin", "demo-admin-2024")
    body = await issued(api, token, subject=SUBJECTS[key].id)
    subject = body["report"]["subject"]
    assert subject["name"] == name and subject["register"] is None
    assert subject["register_note"] == NOT_FOR_PERSONS
    cookie = {"Cookie": f"jjj_session={token}"}
    _, page, _ = await api.call("GET", f"/reports/{body['report_no']}", headers=cookie)
    _, pdf, _ = await api.fetch("GET", f"/reports/{body['report_no']}/report.pdf", headers=cookie)
    for text in (visible(page), pdf_text(pdf)[0]):
        assert (name or "姓名未载明") in text
        assert "市场主体登记信息不含自然人" in text
        assert "—（" not in text and "信用主体—" not in text


async def test_a_register_that_could_not_be_asked_is_named_and_another_region_stands_in(tmp_path: Path) -> None:
    company = SUBJECTS["clean"]  # a Tianjin code
    entry = SubjectRegistration(company.id, "河北登记的名称", Region.HEBEI, "张三", "河北省某地", "某局", None, "在业")
    another = SubjectRegistration(SUBJECTS["records"].id, "别家", Region.TIANJIN)
    nodes = {
        Region.BEIJING: MemoryNode(Region.BEIJING, today=TODAY),  # holds no register: not looked in
        Region.TIANJIN: MemoryNode(Region.TIANJIN, today=TODAY, register=[another]),
        Region.HEBEI: MemoryNode(Region.HEBEI, today=TODAY, register=[entry]),
    }
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        keys_dir=str(tmp_path / "keys"),
        nodes={region: "memory" for region in Region},
        deadline=2.0,
        region_deadline=1.0,
    )
    running = await start_gateway(settings, clients=list(nodes.values()))
    assert running.service is not None
    running.service.clock = lambda: datetime(2025, 6, 16, 2, tzinfo=UTC)
    try:
        admin = Principal("admin", Role.ADMIN, None, settings.issuer)
        # Its home region does not know it: Hebei's register stands in, and says so.
        document = (await running.service.issue(admin, subject_id=company.id)).document
        assert document["subject"]["register"]["region"] == "hebei"
        assert document["subject"]["name"] == "河北登记的名称"
        # Hebei's node down, Beijing's without a register: never "not found in the three".
        nodes[Region.HEBEI].fail = unavailable(Region.HEBEI)
        document = (await running.service.issue(admin, subject_id=company.id)).document
        assert document["subject"]["register"] is None
        assert (
            document["subject"]["register_note"] == "天津市场主体登记信息中未查到该主体；北京、河北的登记信息未能查询"
        )
    finally:
        await running.stop()


def test_a_report_issued_before_registers_were_read_prints_and_verifies_as_it_did() -> None:
    from credit.signing import Keyring, SigningKey, sign
    from gateway.reports.pdf import render, verify_pdf
    from gateway.reports.service import summary_of
    from tests.gateway.sealing import federation, sealed
    from tests.gateway.test_pdf import document, url_for

    key = SigningKey.generate()
    old = document("clean")
    assert "register" not in old["subject"]
    old["subject"]["name"] = ""
    pdf = render(old, sign(old, key), verify_url=url_for(old))
    first = pdf_text(pdf)[0]
    assert "主体登记信息" not in first and "信用主体—" in first  # exactly the old page
    keyring = Keyring([key.private.public_key()])
    assert verify_pdf(sealed(pdf), keyring, trust=federation().trust, verify_url_for=url_for) == old
    summary = summary_of(old, status="valid", now=datetime.now(UTC))
    assert summary["register"] is None and summary["register_note"] == ""
