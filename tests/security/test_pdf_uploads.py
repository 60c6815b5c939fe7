"""Attacks on PDF verification: uploads that decode to far more than they weigh, and
genuine reports with something added that the pages do not show."""

from __future__ import annotations

import io
import re
import resource
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.actions import JavaScript, PageTrigger
from pypdf.annotations import Link
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    NameObject,
    StreamObject,
    TextStringObject,
)

import gateway.reports.pdf
from credit.signing import SigningKey, VerificationError, sign
from gateway.reports.pdf import ATTACHMENT, MAX_DECODED_BYTES, MAX_PAGES, PdfTooLarge, render, verify_pdf
from tests.gateway.sealing import federation, sealed
from tests.gateway.test_pdf import KEY, KEYRING, MISMATCH, document, replace_attachment, tamper, url_for

MiB = 1024 * 1024
TOO_MUCH = f"超过上限 {MAX_DECODED_BYTES // MiB} MiB"
ADDED_ACTION = "PDF 含有附加的脚本或动作"
ADDED_FILE = "PDF 含有附加或改动的嵌入文件"
ADDED_ANNOTATION = "页含有附加的注释"
ADDED_FORM = "PDF 含有附加的表单"
CHANGED_XMP = "PDF 的 XMP 元数据与签发时不同"
CHANGED_INFO = "PDF 文档信息与签发时不同"
UPDATED = "PDF 在签发后被增量修改"
SCRIPT = "app.launchURL('https://credit.example.com.evil/pay', true);"


@dataclass(frozen=True)
class Report:
    document: dict[str, Any]
    jws: str
    pages: bytes  # as rendered, before signing
    pdf: bytes  # signed by the issuing organisation


@pytest.fixture(scope="module")
def genuine() -> Callable[[str], Report]:
    """Builds (once each) a genuine printed report: ``clean`` or ``has_records``."""
    cache: dict[str, Report] = {}

    def get(verdict: str = "clean") -> Report:
        if verdict not in cache:
            doc = document(verdict, records=12)
            jws = sign(doc, KEY)
            pages = render(doc, jws, verify_url=url_for(doc))
            cache[verdict] = Report(doc, jws, pages, sealed(pages))
        return cache[verdict]

    return get


def verified(pdf: bytes) -> dict[str, Any]:
    return verify_pdf(pdf, KEYRING, trust=federation().trust, verify_url_for=url_for)


def refused(pdf: bytes) -> str:
    with pytest.raises(VerificationError) as caught:
        verified(pdf)
    return caught.value.detail


def deflated_zeros(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes, made a MiB at a time (a 200 MiB bomb weighs 200 KB)."""
    deflater = zlib.compressobj(9)
    zeros = bytes(MiB)
    parts = [deflater.compress(zeros) for _ in range(size // MiB)]
    return b"".join(parts) + deflater.flush()


def encoded(stream: StreamObject, raw: bytes) -> None:
    """Make ``stream`` hold ``raw`` as its Flate-encoded data, as an attacker would write it."""
    stream._data = raw
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    for key in ("/DecodeParms", "/DL"):
        stream.pop(NameObject(key), None)


# --------------------------------------------------------------------------- additions


def open_action(action: DictionaryObject) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer.root_object[NameObject("/OpenAction")] = action

    return change


def uri_action() -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/S"): NameObject("/URI"),
            NameObject("/URI"): TextStringObject("https://credit.example.com.evil/verify"),
        }
    )


def document_actions(writer: PdfWriter) -> None:
    # /WC: "before closing the document"
    writer.root_object[NameObject("/AA")] = DictionaryObject({NameObject("/WC"): JavaScript(SCRIPT)})


def page_actions(writer: PdfWriter) -> None:
    writer.pages[0].add_action(PageTrigger.OPEN, JavaScript(SCRIPT))


def names_tree_javascript(writer: PdfWriter) -> None:
    writer.add_open_action(JavaScript(SCRIPT))  # pypdf puts it in the /JavaScript names tree


def extra_file(writer: PdfWriter) -> None:
    writer.add_attachment("付款说明.html", b"<script>location='https://credit.example.com.evil'</script>")


def annotation(writer: PdfWriter) -> None:
    writer.add_annotation(0, Link(rect=(0, 0, 595, 842), url="https://credit.example.com.evil/verify"))


def form(writer: PdfWriter) -> None:
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject(), NameObject("/NeedAppearances"): BooleanObject(True)}
    )


def title(writer: PdfWriter) -> None:
    writer.add_metadata({"/Title": "无违法违规证明（三地均无记录）"})


def xmp(writer: PdfWriter) -> None:
    writer.xmp_metadata = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Clean record</rdf:li></rdf:Alt></dc:title>'
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


ADDITIONS: dict[str, tuple[Callable[[PdfWriter], None], str, str]] = {
    "open-action-javascript": (open_action(JavaScript(SCRIPT)), ADDED_ACTION, "/OpenAction"),
    "open-action-uri": (open_action(uri_action()), ADDED_ACTION, "/OpenAction"),
    "document-additional-actions": (document_actions, ADDED_ACTION, "/AA"),
    "page-additional-actions": (page_actions, ADDED_ACTION, "/AA of page 1"),
    "names-tree-javascript": (names_tree_javascript, ADDED_ACTION, "/Names /JavaScript"),
    "extra-embedded-file": (extra_file, ADDED_FILE, "付款说明.html"),
    "annotation": (annotation, ADDED_ANNOTATION, "page 1"),
    "acroform": (form, ADDED_FORM, "/AcroForm"),
    "changed-title": (title, CHANGED_INFO, "/Title"),
    "xmp-metadata": (xmp, CHANGED_XMP, "/Metadata"),
}


@pytest.mark.parametrize("addition", list(ADDITIONS))
def test_anything_added_to_a_genuine_pdf_is_refused_with_what_was_found(
    genuine: Callable[[str], Report], addition: str
) -> None:
    report = genuine("clean")
    change, finding, where = ADDITIONS[addition]
    assert verified(report.pdf) == report.document
    # Added to the pages and then signed, as only the seal's holder could: the pages are
    # checked on their own, whatever signs them.
    forged = sealed(tamper(report.pages, change))
    assert PdfReader(io.BytesIO(forged)).attachments[ATTACHMENT] == [report.jws.encode()]  # the report is intact
    detail = refused(forged)
    assert finding in detail and where in detail
    # Added to the signed PDF (saved again, as a tool would): its signature no longer holds.
    assert "签名" in refused(tamper(report.pdf, change))


def test_an_incremental_update_after_the_gateways_revision_is_refused(genuine: Callable[[str], Report]) -> None:
    report = genuine("clean")
    writer = PdfWriter(io.BytesIO(report.pdf), incremental=True)
    writer.add_metadata({"/Subject": "已核验 (verified)"})
    out = io.BytesIO()
    writer.write(out)
    updated = out.getvalue()
    assert updated.startswith(report.pdf) and len(updated) > len(report.pdf)
    assert UPDATED in refused(updated)
    # …and in the pages, under the signature.
    writer = PdfWriter(io.BytesIO(report.pages), incremental=True)
    writer.add_metadata({"/Subject": "已核验 (verified)"})
    out = io.BytesIO()
    writer.write(out)
    assert UPDATED in refused(sealed(out.getvalue()))


def test_an_appended_revision_that_changes_nothing_is_still_refused(genuine: Callable[[str], Report]) -> None:
    # A second cross-reference section and %%EOF: viewers offer the revisions, and no
    # report was ever issued in two.
    report = genuine("clean")
    for pdf, seal in ((report.pdf, lambda pdf: pdf), (report.pages, sealed)):
        last_section = pdf[pdf.rindex(b"\nxref\n") + 1 :]
        appended = pdf + last_section
        assert PdfReader(io.BytesIO(appended)).metadata == PdfReader(io.BytesIO(pdf)).metadata
        assert UPDATED in refused(seal(appended))


def test_a_trailer_pointing_back_to_an_earlier_revision_is_refused(genuine: Callable[[str], Report]) -> None:
    report = genuine("clean")
    start = int(re.findall(rb"startxref\s+(\d+)", report.pages)[-1])
    chained = report.pages.replace(b"trailer\n<<", b"trailer\n<<\n/Prev %d" % start, 1)
    assert len(re.findall(rb"/Prev", chained)) == 1
    assert "电子签名" in refused(chained)  # unsigned: pyHanko would not even sign it (a loop)
    # In the signed PDF the pages' trailer is under the signature (and what follows no
    # longer is where the cross-reference tables say).
    signed_chain = report.pdf.replace(b"trailer\n<<", b"trailer\n<<\n/Prev %d" % start, 1)
    assert len(re.findall(rb"/Prev", signed_chain)) == 2
    assert refused(signed_chain).startswith(("PDF", "不是有效的 PDF 文件"))


def test_other_compression_and_object_numbers_still_verify(genuine: Callable[[str], Report]) -> None:
    report = genuine("has_records")

    def resave(writer: PdfWriter) -> None:
        for page in writer.pages:
            page.compress_content_streams(level=9)

    assert verified(sealed(tamper(report.pages, resave))) == report.document


# --------------------------------------------------------------------------- limits


def bomb_in_page(raw: bytes) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        contents = writer.pages[0]["/Contents"].get_object()
        assert isinstance(contents, StreamObject)
        encoded(contents, raw)

    return change


def bomb_as_report(raw: bytes) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        (attachment,) = [a for a in writer.attachment_list if a.name == ATTACHMENT]
        stream = attachment.pdf_object["/EF"]["/F"].get_object()
        assert isinstance(stream, StreamObject)
        encoded(stream, raw)

    return change


@pytest.mark.parametrize("where", [bomb_in_page, bomb_as_report], ids=["page-content", "attached-report"])
def test_a_decompression_bomb_is_refused_within_bounded_memory(
    genuine: Callable[[str], Report], where: Callable[[bytes], Callable[[PdfWriter], None]]
) -> None:
    report = genuine("clean")
    raw = deflated_zeros(200 * MiB)
    assert len(raw) < MiB
    bomb = sealed(tamper(report.pages, where(raw)))
    assert len(bomb) < 2 * len(report.pdf) + len(raw)
    verified(report.pdf)  # fonts and caches loaded before measuring

    # tracemalloc sees every allocation Python and zlib make; the peak resident size
    # also sees anything outside them.
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        with pytest.raises(PdfTooLarge) as caught:
            verified(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024  # KiB on Linux
    assert TOO_MUCH in caught.value.detail
    assert peak < 40 * MiB, f"verification peaked at {peak / MiB:.0f} MiB"
    assert grown < 50 * MiB, f"the process grew by {grown / MiB:.0f} MiB"


def test_streams_are_decoded_within_one_budget_for_the_whole_pdf(genuine: Callable[[str], Report]) -> None:
    # No stream alone is over the limit; together they are.
    report = genuine("clean")
    each = MAX_DECODED_BYTES // 3 + MiB
    share = deflated_zeros(each)

    def spread(writer: PdfWriter) -> None:
        page = writer.pages[0]
        page.replace_contents(ArrayObject([StreamObject() for _ in range(3)]))
        for part in page["/Contents"]:
            encoded(part.get_object(), share)

    assert 3 * each > MAX_DECODED_BYTES > 2 * each
    assert TOO_MUCH in refused(sealed(tamper(report.pages, spread)))


def test_too_many_pages_are_refused_naming_the_limit_before_any_page_is_decoded(
    genuine: Callable[[str], Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = genuine("clean")

    def pad(writer: PdfWriter) -> None:
        for _ in range(MAX_PAGES):
            writer.add_blank_page()

    padded = sealed(tamper(report.pages, pad))
    assert len(PdfReader(io.BytesIO(padded)).pages) > MAX_PAGES

    def decoded(*args: Any) -> bytes:
        raise AssertionError("a page was decoded")

    monkeypatch.setattr(gateway.reports.pdf, "_page_content", decoded)
    with pytest.raises(PdfTooLarge) as caught:
        verified(padded)
    assert f"上限 {MAX_PAGES} 页" in caught.value.detail and f"at most {MAX_PAGES}" in caught.value.detail


def test_a_forged_report_is_refused_before_any_page_is_read(
    genuine: Callable[[str], Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = genuine("clean")
    # A bomb for pages, with a report signed by a key the gateway does not have.
    forged = sealed(
        replace_attachment(
            tamper(report.pages, bomb_in_page(deflated_zeros(200 * MiB))),
            sign(report.document, SigningKey.generate()).encode(),
        )
    )
    read: list[str] = []

    def page_content(*args: Any) -> bytes:
        read.append("content")
        raise AssertionError("a page was decoded")

    def page_count(*args: Any) -> int:
        read.append("page tree")
        raise AssertionError("the page tree was walked")

    monkeypatch.setattr(gateway.reports.pdf, "_page_content", page_content)
    monkeypatch.setattr(gateway.reports.pdf, "_page_count", page_count)
    detail = refused(forged)
    assert "未知签名密钥" in detail and not read


def test_the_limits_leave_room_for_long_reports() -> None:
    # A report of 150 records prints on 29 pages: the limits are far above any report.
    doc = document("has_records", records=150)
    jws = sign(doc, KEY)
    pdf = render(doc, jws, verify_url=url_for(doc), seal=federation().seal)
    assert 20 < len(PdfReader(io.BytesIO(pdf)).pages) < MAX_PAGES / 4
    assert verified(pdf) == doc


# --------------------------------------------------------------------------- end to end


async def test_the_verify_page_refuses_a_bomb_and_an_added_script_in_a_gateway_report(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
    assert status == 201, body
    verify_url = f"{running.url}/verify?code={body['report']['verification_code']}"
    pages = render(body["report"], body["jws"], verify_url=verify_url)
    pdf = sealed(pages)  # as the portal prints it

    async def upload(data: bytes) -> str:
        status, _, reply = await api.call("GET", "/verify")
        assert status == 200
        csrf = reply.cookies["jjj_csrf"].value
        form = aiohttp.FormData({"csrf": csrf})
        form.add_field("file", data, filename="report.pdf", content_type="application/pdf")
        status, page, _ = await api.call("POST", "/verify", data=form, headers={"Cookie": f"jjj_csrf={csrf}"})
        assert status == 200, page
        return str(page)

    genuine_page = await upload(pdf)
    assert "verification-genuine" in genuine_page and "天津市公共信用信息中心（文件签名后未被改动）" in genuine_page
    scripted = await upload(sealed(tamper(pages, open_action(JavaScript(SCRIPT)))))
    assert "verification-not-genuine" in scripted and ADDED_ACTION in scripted
    resigned = await upload(tamper(pdf, open_action(JavaScript(SCRIPT))))  # added after signing
    assert "verification-not-genuine" in resigned and "签名后被改动" in resigned
    bombed = await upload(sealed(tamper(pages, bomb_in_page(deflated_zeros(200 * MiB)))))
    assert "verification-not-genuine" in bombed and TOO_MUCH in bombed
    assert MISMATCH not in bombed
