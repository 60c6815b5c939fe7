"""The printed report: what every page shows, its QR codes, and proving a PDF genuine."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import io
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import FreeText
from pypdf.generic import NameObject
from reportlab.pdfbase.ttfonts import TTFontFile  # type: ignore[import-untyped]

from credit.catalogue import Scope, domains
from credit.document import FORMAT, TITLE
from credit.regions import Region
from credit.signing import Keyring, SigningKey, VerificationError, sign
from gateway.reports.pdf import ATTACHMENT, CJK_FONT_FILE, INCOMPLETE_BANNER, VERDICT, check_pdf, render, verify_pdf
from tests.gateway.sealing import federation, sealed

KEY = SigningKey.generate()
KEYRING = Keyring([KEY.private.public_key()])
DOMAINS = ["market_regulation", "taxation", "ecology_environment"]
SUBJECT_ID = "91120116MA05JBXQ1X"
MISMATCH = "PDF 可见内容与签名报告不符"
SCALE = 3  # 216 dpi: QR modules of about 5 pixels


def url_for(document: dict[str, Any]) -> str:
    return f"https://credit.example.cn/verify?code={document['verification_code']}"


def record(number: int, region: Region) -> dict[str, Any]:
    return {
        "decision_no": f"{region.name_zh[0]}市监罚〔2024〕{100 + number}号",
        "authority": f"{region.name_zh}市场监督管理局",
        "decided_on": f"2024-03-{1 + number % 28:02d}",
        "category": "罚款",
        "content": "未按规定公示年度报告信息，责令改正，并处罚款人民币五千元整。" * (1 + number % 3),
        "procedure": "general",
        "status": "in_force",
        "publicity_until": "2027-03-01",
        "removed_on": None,
        "record_id": f"{region.value}-{number}",
        "version": 1,
    } | ({"objection": "open"} if number == 17 else {})


def document(verdict: str, *, records: int = 0) -> dict[str, Any]:
    """A report document as :func:`credit.document.report_document` makes them."""
    names = domains()
    regions: list[dict[str, Any]] = [
        {
            "region": region.value,
            "name": region.name_zh,
            "status": "answered",
            "catalogue_version": f"{region.value}-2025.1",
            "data_as_of": "2025-06-15T20:00:00Z",
            "reason": None,
        }
        for region in Region
    ]
    lines: list[dict[str, Any]] = [
        {
            "domain": domain,
            "domain_name": names[domain].name,
            "scope": Scope.ADMINISTRATIVE_PENALTY.value,
            "scope_name": Scope.ADMINISTRATIVE_PENALTY.name_zh,
            "cells": [{"region": region.value, "outcome": "no_record"} for region in Region],
        }
        for domain in DOMAINS
    ]
    if verdict == "has_records":
        lines[0]["cells"][0] = {
            "region": Region.BEIJING.value,
            "outcome": "records",
            "records": [record(n, Region.BEIJING) for n in range(records)],
            "excluded": 1,
        }
        lines[1]["cells"][2] = {
            "region": Region.HEBEI.value,
            "outcome": "records",
            "records": [record(7, Region.HEBEI)],
        }
    if verdict == "incomplete":
        regions[2].update(status="unavailable", catalogue_version=None, data_as_of=None, reason="节点超时 (deadline)")
        for line in lines:
            line["cells"][2] = {"region": Region.HEBEI.value, "outcome": "unavailable", "reason": "节点超时 (deadline)"}
        lines[1]["cells"][1] = {"region": Region.TIANJIN.value, "outcome": "not_covered"}
    return {
        "format": FORMAT,
        "title": TITLE,
        "report_no": f"JJJ-20250616-{verdict[:4].upper()}ABCDEF",
        "verification_code": "7K3M-9QXR-2D8F-WH4T-P",
        "issuer": "京津冀公共信用信息共享平台",
        "issued_at": "2025-06-16T02:03:04Z",
        "profile": {"id": "tianjin-2023", "version": 1},
        "subject": {"id": SUBJECT_ID, "kind": "enterprise", "name": "天津测试科技有限公司"},
        "window": {
            "application_date": "2025-06-16",
            "years": 3,
            "start": "2022-06-13",
            "cutoff": "2025-06-13",
            "calendar_exact": True,
        },
        "regions": regions,
        "lines": lines,
        "verdict": verdict,
        "notes": [],
    }


class Printed:
    """A rendered report with everything the tests look at, computed once: its pages
    alone (what the gateway renders before signing) and the signed PDF."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.document = doc
        self.jws = sign(doc, KEY)
        self.url = url_for(doc)
        self.pages = render(doc, self.jws, verify_url=self.url)
        self.pdf = render(doc, self.jws, verify_url=self.url, seal=federation().seal)
        pdf = pdfium.PdfDocument(self.pdf)
        try:
            self.texts = [page.get_textpage().get_text_range() for page in pdf]
            self.images = [page.render(scale=SCALE).to_pil().convert("L") for page in pdf]
        finally:
            pdf.close()


CASES = {
    "clean": lambda: document("clean"),
    "has_records": lambda: document("has_records", records=30),
    "incomplete": lambda: document("incomplete"),
}


@pytest.fixture(scope="module")
def printed() -> Iterator[Callable[[str], Printed]]:
    cache: dict[str, Printed] = {}

    def get(case: str) -> Printed:
        if case not in cache:
            cache[case] = Printed(CASES[case]())
        return cache[case]

    yield get


def flat(text: str) -> str:
    """Text without any whitespace: lines wrap, and extraction marks the breaks differently."""
    return "".join(text.split())


def ink(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """How many pixels of ``box`` (or the whole image) are clearly not white."""
    region = image.crop(box) if box else image
    return sum(count for value, count in enumerate(region.histogram()) if value < 160)


def tamper(pdf: bytes, change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def replace_attachment(pdf: bytes, content: bytes) -> bytes:
    def change(writer: PdfWriter) -> None:
        (attachment,) = [a for a in writer.attachment_list if a.name == ATTACHMENT]
        attachment.content = content

    return tamper(pdf, change)


def verified(pdf: bytes, **kwargs: Any) -> dict[str, Any]:
    return verify_pdf(pdf, KEYRING, trust=federation().trust, **kwargs)


def rejected(pdf: bytes, **kwargs: Any) -> str:
    with pytest.raises(VerificationError) as caught:
        verified(pdf, **kwargs)
    return caught.value.detail


# --------------------------------------------------------------------------- the font


def test_the_bundled_font_is_a_truetype_subset_with_the_chinese_a_report_needs() -> None:
    assert CJK_FONT_FILE.stat().st_size < 4_000_000
    assert (CJK_FONT_FILE.parent / "LICENSE-DroidSansFallback.txt").read_text(encoding="utf-8").count("Apache") >= 1
    font = TTFontFile(str(CJK_FONT_FILE))  # reads TrueType outlines only
    assert "glyf" in font.table and "CFF " not in font.table
    cmap = font.charToGlyph
    needed = TITLE + "第页共无违法违规记录有该地区未覆盖暂不可用已应答报告不完整北京天津河北，。：；（）、"
    assert not [char for char in needed if ord(char) not in cmap]
    assert sum(1 for code in cmap if 0x4E00 <= code <= 0x9FFF) > 20_000


# --------------------------------------------------------------------------- what is printed


@pytest.mark.parametrize("case", list(CASES))
def test_every_page_carries_title_number_code_and_page_of_pages(printed: Callable[[str], Printed], case: str) -> None:
    report = printed(case)
    total = len(report.texts)
    assert total >= 1
    for number, (text, image) in enumerate(zip(report.texts, report.images, strict=True), start=1):
        assert TITLE in text
        assert report.document["report_no"] in text
        assert report.document["verification_code"] in text and "核验码" in text and "验证码" not in text
        assert f"第 {number} 页 / 共 {total} 页" in text
        assert ink(image) > 20_000, f"page {number} is (nearly) blank"
    first = report.texts[0]
    assert "天津测试科技有限公司" in first and SUBJECT_ID in first
    assert "2022-06-13 至 2025-06-13" in first and "近 3 年" in first and "2025-06-16" in first
    assert "天津市公共信用报告（无违法违规证明专用版）2023年版" in flat(first) and "tianjin-2023" not in first
    assert "查询区间截止于申请日前第7个工作日" in flat(first)
    assert "2025-06-16 10:03:04（北京时间）" in first
    for region in Region:
        assert region.name_zh in first


def test_a_clean_report_says_so_and_nothing_else(printed: Callable[[str], Printed]) -> None:
    text = flat("".join(printed("clean").texts))
    assert VERDICT["clean"] in text and text.count("已应答") == len(Region)
    assert text.count("无违法违规记录") >= len(DOMAINS) * len(Region)
    # The result table, after its legend (which names every outcome) and before the verdict.
    cells = text.split("领域类别北京天津河北", 1)[1].split("四、结论", 1)[0]
    assert cells.count("无违法违规记录") == len(DOMAINS) * len(Region)
    for wording in ("不完整", "暂不可用", "未覆盖", "有记录", VERDICT["has_records"]):
        assert wording not in cells


def test_records_are_printed_with_number_authority_date_and_content(printed: Callable[[str], Printed]) -> None:
    report = printed("has_records")
    text = flat("".join(report.texts))
    assert VERDICT["has_records"] in text and VERDICT["clean"] not in text
    assert "有记录（30条）" in text and "有记录（1条）" in text
    for number in (0, 17, 29):
        rec = record(number, Region.BEIJING)
        for value in (rec["decision_no"], rec["authority"], rec["decided_on"]):
            assert value in text
    assert "未按规定公示年度报告信息" in text
    assert "另有1条记录按规则不计入" in text
    assert text.count("异议处理中") == 1  # the one record under objection


def test_a_long_report_runs_onto_several_pages(printed: Callable[[str], Printed]) -> None:
    report = printed("has_records")
    assert len(report.texts) > 2
    assert f"第 {len(report.texts)} 页 / 共 {len(report.texts)} 页" in report.texts[-1]
    # The last records reach a later page than the first ones.
    assert record(0, Region.BEIJING)["decision_no"] in flat(report.texts[0])
    assert record(29, Region.BEIJING)["decision_no"] not in flat(report.texts[0])


def test_an_incomplete_report_says_so_prominently_on_every_page(printed: Callable[[str], Printed]) -> None:
    report = printed("incomplete")
    text = flat("".join(report.texts))
    assert INCOMPLETE_BANNER in flat(report.texts[0])  # the banner under the title
    assert text.count(INCOMPLETE_BANNER) >= 2  # and the verdict
    for page in report.texts:
        assert "报告不完整" in page  # the page header
    assert "河北暂不可用" in text  # the region table
    assert text.count("该地区暂不可用（节点超时(deadline)）") == len(DOMAINS)
    assert "该地区未覆盖" in text
    assert VERDICT["clean"] not in text


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


@pytest.mark.parametrize("verdict", ["has_records", "clean"])
def test_a_gap_is_marked_whatever_the_verdict(verdict: str) -> None:
    # Records found in one region do not make up for a region that did not answer; and
    # a document claiming "clean" despite a gap is never printed as clean.
    doc = document("has_records", records=1)
    doc["verdict"] = verdict
    doc["lines"][2]["cells"][1] = {"region": Region.TIANJIN.value, "outcome": "unavailable", "reason": "熔断"}
    texts = page_texts(render(doc, "h.p.s", verify_url=url_for(doc)))
    text = flat("".join(texts))
    assert INCOMPLETE_BANNER in flat(texts[0])
    assert all("报告不完整" in page for page in texts)
    assert "该地区暂不可用（熔断）" in text
    assert VERDICT["clean"] not in text


def test_a_person_and_text_that_looks_like_markup() -> None:
    doc = document("clean")
    doc["subject"] = {"id": "110101199003074514", "kind": "person", "name": "张三 <b>&amp;</b>"}
    doc["notes"] = ["节假日安排未公布，截止日按周一至周五推算 (holiday schedule not yet published)"]
    text = flat("".join(page_texts(render(doc, "h.p.s", verify_url=url_for(doc)))))
    assert "自然人" in text and "公民身份号码110101199003074514" in text
    assert "张三<b>&amp;</b>" in text
    assert "说明1.节假日安排未公布" in text


def a_persons_report() -> dict[str, Any]:
    doc = document("clean")
    doc["subject"] = {"id": "120104198503120042", "kind": "person", "name": "李*华", "register": None}
    return doc


def test_a_persons_own_copy_prints_their_full_name_over_the_unchanged_signed_report() -> None:
    doc = a_persons_report()
    jws = sign(doc, KEY)
    own = render(doc, jws, verify_url=url_for(doc), seal=federation().seal, holder_name="李建华")
    first = flat(page_texts(own)[0])
    assert "信用主体李建华" in first and "姓名李建华" in first and "李*华" not in first
    # The same signed report rides inside; the full name is in what the organisation signed.
    (attached,) = [a for a in PdfReader(io.BytesIO(own)).attachment_list if a.name == ATTACHMENT]
    assert attached.content == jws.encode()
    printed = check_pdf(own, KEYRING, trust=federation().trust)
    assert printed.document == doc and printed.holder_name == "李建华"
    assert check_pdf(render(doc, jws, verify_url=url_for(doc), seal=federation().seal), KEYRING,
                     trust=federation().trust).holder_name == ""  # fmt: skip


def test_a_full_name_that_is_not_the_subjects_is_neither_printed_nor_accepted() -> None:
    doc = a_persons_report()
    jws = sign(doc, KEY)
    for name in ("王建华", "李华", "李建华华"):  # not 李*华
        with pytest.raises(ValueError, match="not the subject's name"):
            render(doc, jws, verify_url=url_for(doc), holder_name=name)
    company = document("clean")
    with pytest.raises(ValueError, match="only a person's own copy"):
        render(company, sign(company, KEY), verify_url=url_for(company), holder_name="天津测试科技有限公司")

    # Recorded after printing, a name is checked against the pages and the signed report
    # (even under a sound signature): another name fitting the mask prints differently; a
    # name not fitting it, or on a copy that printed the masked name, is refused.
    own = render(doc, jws, verify_url=url_for(doc), holder_name="李建华")
    plain = render(doc, jws, verify_url=url_for(doc))

    def recorded(name: str) -> Callable[[PdfWriter], None]:
        return lambda writer: writer.add_metadata({"/JJJHolderName": name})

    assert MISMATCH in rejected(sealed(tamper(own, recorded("李德华"))))
    assert "所印姓名与报告不符" in rejected(sealed(tamper(own, recorded("王建华"))))
    assert MISMATCH in rejected(sealed(tamper(plain, recorded("李建华"))))
    assert verified(sealed(own)) == doc


def title_boxes(pdf: bytes) -> list[tuple[int, int, int, int]]:
    """Where the body title's characters are on page 1, in pixels: (left, top, right, bottom)."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        textpage = page.get_textpage()
        found = textpage.search(TITLE, match_case=True).get_next()
        assert found is not None, "the title is not in the text of page 1"
        start, count = found
        height = page.get_height()
        boxes = []
        for index in range(start, start + count):
            left, bottom, right, top = textpage.get_charbox(index)
            boxes.append(
                (
                    int(left * SCALE),
                    int((height - top) * SCALE),
                    int(right * SCALE) + 1,
                    int((height - bottom) * SCALE) + 1,
                )
            )
        return boxes
    finally:
        document.close()


def test_chinese_glyphs_are_really_drawn(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")
    image = report.images[0]
    boxes = title_boxes(report.pdf)
    assert len(boxes) == len(TITLE)
    for box in boxes:
        assert ink(image, box) > 40, f"no ink where {box} should show a character"
    # A missing glyph draws the same empty box for every character: distinct characters
    # must look distinct.
    crops = {}
    for char, box in zip(TITLE, boxes, strict=True):
        crops.setdefault(char, image.crop(box).resize((24, 24)).tobytes())
    assert len(set(crops.values())) == len(crops)


@pytest.mark.parametrize("case", list(CASES))
def test_the_qr_code_on_every_page_opens_the_verify_page(printed: Callable[[str], Printed], case: str) -> None:
    report = printed(case)
    for number, image in enumerate(report.images, start=1):
        found = [b.text for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]
        assert found == [report.url], f"page {number}"


# --------------------------------------------------------------------------- determinism


def test_rendering_is_deterministic(printed: Callable[[str], Printed]) -> None:
    report = printed("incomplete")
    assert render(report.document, report.jws, verify_url=report.url) == report.pages
    assert render(report.document, report.jws, verify_url=report.url + "X") != report.pages
    assert report.pdf.startswith(report.pages)  # the signature is one revision appended
    reader = PdfReader(io.BytesIO(report.pages))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20250616020304+00'00'"
    assert reader.metadata["/JJJVerifyURL"] == report.url
    assert reader.attachments[ATTACHMENT] == [report.jws.encode()]


def test_another_process_renders_the_same_bytes(printed: Callable[[str], Printed], tmp_path: Path) -> None:
    report = printed("incomplete")
    (tmp_path / "in.json").write_text(json.dumps([report.document, report.jws, report.url]), encoding="utf-8")
    script = (
        "import hashlib, json, sys; from gateway.reports.pdf import render; d, j, u = json.load(open(sys.argv[1]));"
        "print(hashlib.sha256(render(d, j, verify_url=u)).hexdigest())"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "in.json")], capture_output=True, text=True, cwd=root, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hashlib.sha256(report.pages).hexdigest()


# --------------------------------------------------------------------------- verify_pdf


@pytest.mark.parametrize("case", list(CASES))
def test_an_untouched_pdf_is_genuine(printed: Callable[[str], Printed], case: str) -> None:
    report = printed(case)
    assert verified(report.pdf) == report.document
    assert verified(report.pdf, verify_url_for=url_for) == report.document


def test_saving_again_with_other_compression_is_still_genuine(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")

    def recompress(writer: PdfWriter) -> None:
        for page in writer.pages:
            page.compress_content_streams(level=1)

    again = tamper(report.pages, recompress)
    assert again != report.pages
    assert verified(sealed(again)) == report.document


def test_a_report_signed_with_another_key_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")
    forged = replace_attachment(report.pages, sign(report.document, SigningKey.generate()).encode())
    assert "未知签名密钥" in rejected(sealed(forged))


def test_an_altered_signed_report_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("has_records")
    header, _, signature = report.jws.split(".")
    altered = copy.deepcopy(report.document)
    altered["verdict"] = "clean"
    altered["lines"][0]["cells"][0] = {"region": "beijing", "outcome": "no_record"}
    payload = base64.urlsafe_b64encode(json.dumps(altered, ensure_ascii=False).encode()).rstrip(b"=").decode()
    forged = replace_attachment(report.pages, f"{header}.{payload}.{signature}".encode())
    assert "签名无效" in rejected(sealed(forged))


def test_another_genuine_report_attached_is_rejected(printed: Callable[[str], Printed]) -> None:
    # A genuine clean report attached to the pages of a report with records.
    swapped = replace_attachment(printed("has_records").pages, printed("clean").jws.encode())
    detail = rejected(sealed(swapped))
    assert MISMATCH in detail and "pages" in detail  # the clean one prints on fewer pages


def test_altered_printed_text_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")
    other_id = SUBJECT_ID[:-2] + "99"

    def edit(writer: PdfWriter) -> None:
        page = writer.pages[0]
        contents = page.get_contents()
        assert contents is not None
        data = contents.get_data()
        assert data.count(SUBJECT_ID.encode()) == 1
        contents.set_data(data.replace(SUBJECT_ID.encode(), other_id.encode()))
        page.replace_contents(contents)

    forged = sealed(tamper(report.pages, edit))
    assert other_id in pdfium.PdfDocument(forged)[0].get_textpage().get_text_range()  # visibly changed
    detail = rejected(forged)
    assert MISMATCH in detail and "page 1" in detail


def test_an_overlay_annotation_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("incomplete")

    def overlay(writer: PdfWriter) -> None:
        writer.add_annotation(0, FreeText(text="三地均无违法违规记录", rect=(50, 600, 500, 660)))

    detail = rejected(sealed(tamper(report.pages, overlay)))
    assert MISMATCH in detail and "annotations" in detail and "page 1" in detail


def test_a_qr_code_leading_elsewhere_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")
    phishing = render(
        report.document, report.jws, verify_url="https://credit.example.com.evil/verify", seal=federation().seal
    )
    assert verified(phishing) == report.document  # consistent with itself…
    detail = rejected(phishing, verify_url_for=url_for)  # …but not with the real verify page
    assert MISMATCH in detail

    def relabel(writer: PdfWriter) -> None:
        writer.add_metadata({"/JJJVerifyURL": "https://credit.example.com.evil/verify"})

    assert MISMATCH in rejected(sealed(tamper(report.pages, relabel)))


def test_a_pdf_without_the_signed_report_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")

    def remove(writer: PdfWriter) -> None:
        for attachment in list(writer.attachment_list):
            attachment.delete()

    stripped = sealed(tamper(report.pages, remove))
    assert ATTACHMENT in rejected(stripped) and "没有签名报告" in rejected(stripped)
    assert "not ASCII" in rejected(sealed(replace_attachment(report.pages, "报告".encode())))


def test_a_signed_payload_that_is_not_a_report_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")
    token = sign({"sub": "someone", "aud": "jjj"}, KEY)
    assert "not a credit report" in rejected(sealed(replace_attachment(report.pages, token.encode())))


def test_a_pdf_without_a_verify_url_is_rejected(printed: Callable[[str], Printed]) -> None:
    report = printed("clean")

    def drop(writer: PdfWriter) -> None:
        assert writer._info is not None
        del writer._info[NameObject("/JJJVerifyURL")]

    unlabelled = sealed(tamper(report.pages, drop))
    assert "verify URL" in rejected(unlabelled)
    assert verified(unlabelled, verify_url_for=url_for) == report.document


UNREADABLE = "不是有效的 PDF 文件"
CHANGED = "签名后被改动"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda pdf: b"", UNREADABLE),
        (lambda pdf: random.Random(7).randbytes(5000), UNREADABLE),
        (lambda pdf: b"%PDF-1.4\n" + random.Random(8).randbytes(5000), UNREADABLE),
        (lambda pdf: pdf[: len(pdf) // 2], UNREADABLE),
        (lambda pdf: pdf[:200] + pdf[400:], UNREADABLE),
        (lambda pdf: pdf.replace(b"/Type /Page", b"/Type /Pagx"), CHANGED),  # readable, but not what was signed
    ],
    ids=["empty", "random", "random-with-header", "truncated", "hole", "broken-page"],
)
def test_malformed_pdfs_are_rejected_not_crashed_on(
    printed: Callable[[str], Printed], damage: Callable[[bytes], bytes], reason: str
) -> None:
    # A VerificationError with the reason, never another exception.
    assert reason in rejected(damage(printed("clean").pdf))


# --------------------------------------------------------------------------- end to end


async def test_a_report_from_the_gateway_prints_and_verifies(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
    assert status == 201, body
    status, jwks, _ = await api.call("GET", "/.well-known/jwks.json")
    assert status == 200
    keyring = Keyring.from_jwks(jwks)
    pdf = await asyncio.to_thread(
        render, body["report"], body["jws"], verify_url=url_for(body["report"]), seal=federation().seal
    )
    trust = federation().trust
    assert await asyncio.to_thread(verify_pdf, pdf, keyring, trust=trust, verify_url_for=url_for) == body["report"]
    text = "".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(pdf))
    assert body["report_no"] in text and "有记录（" in text
    assert "天津市公共信用信息中心" in text and "jjj-gateway" not in text  # the organisation, not the instance
    assert "未知签名密钥" in rejected(pdf)  # the test key is not the gateway's
