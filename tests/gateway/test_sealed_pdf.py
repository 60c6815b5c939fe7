"""The printed report's PDF signature (PAdES): what pyHanko's own validator and any reader
see, that a change after signing fails it and ``jjj verify``, and that the pages show
the subject and the issuing organisation's seal."""

from __future__ import annotations

import asyncio
import io
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy
import pypdfium2 as pdfium
import pytest
from cryptography import x509
from PIL import Image
from pyhanko.pdf_utils.generic import NameObject as HankoName
from pyhanko.pdf_utils.generic import TextStringObject as HankoText
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]

from credit.signing import VerificationError, sign
from federation.tls import DOCUMENT_SIGNING, init_ca, issue_document_signer
from gateway.reports.pdf import render, verify_pdf
from gateway.reports.seal import FIELD, Seal, SealTrust
from tests.gateway.sealing import ORGANISATION, federation, sealed
from tests.gateway.test_pdf import KEY, KEYRING, document, url_for

SCALE = 2  # 144 dpi
SUBJECT_NAME = "天津测试科技有限公司"


class Signed:
    def __init__(self) -> None:
        self.document = document("has_records", records=3)
        self.document["issuer_name"] = ORGANISATION
        self.jws = sign(self.document, KEY)
        self.pdf = render(self.document, self.jws, verify_url=url_for(self.document), seal=federation().seal)


@pytest.fixture(scope="module")
def signed() -> Iterator[Signed]:
    yield Signed()


def pyhanko_status(pdf: bytes, roots: list[x509.Certificate] | None = None) -> PdfSignatureStatus:
    """What pyHanko's own validator says of the one signature, trusting the test CA."""
    from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
    from cryptography.hazmat.primitives import serialization

    trusted = [
        asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
        for root in roots or federation().trust.roots
    ]
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(signature, ValidationContext(trust_roots=trusted, allow_fetching=False))


def jjj_verify(pdf: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "report.pdf").write_bytes(pdf)
    (tmp_path / "jwks.json").write_text(__import__("json").dumps(KEYRING.jwks()), encoding="utf-8")
    command = ["verify", str(tmp_path / "report.pdf"), "--jwks", str(tmp_path / "jwks.json")]
    return subprocess.run(
        [sys.executable, "-m", "jjj", *command, "--ca", str(federation().ca)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------- genuine


def test_pyhanko_validates_the_signature_unchanged_and_trusted(signed: Signed, tmp_path: Path) -> None:
    status = pyhanko_status(signed.pdf)
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert status.coverage is SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level is ModificationLevel.NONE
    assert status.docmdp_ok is True  # a certification signature: no changes allowed after it
    signer = x509.load_der_x509_certificate(status.signing_cert.dump())
    assert signer.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == ORGANISATION
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert DOCUMENT_SIGNING in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    done = jjj_verify(signed.pdf, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"PDF signed by {ORGANISATION}" in done.stdout and f"by {ORGANISATION}" in done.stdout


def test_the_signature_field_is_on_the_last_page_beside_the_seal(signed: Signed) -> None:
    reader = PdfReader(io.BytesIO(signed.pdf))
    last = reader.pages[-1]
    widgets = [a.get_object() for a in last.get("/Annots", [])]
    (field,) = [w for w in widgets if w.get("/T") == FIELD]
    x1, y1, x2, y2 = (float(v) for v in field["/Rect"])
    assert x2 - x1 > 60 * mm and y2 - y1 > 20 * mm  # visible, and large enough to read
    assert x2 < A4[0] - 16 * mm - 56 * mm  # left of the seal
    assert all("/Annots" not in page for page in reader.pages[:-1])


# --------------------------------------------------------------------------- changed


def flipped(pdf: bytes) -> bytes:
    middle = len(pdf) // 3  # inside the pages' revision
    return pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]


def added_text(pdf: bytes) -> bytes:
    """A revision appended by pyHanko's own writer: a text annotation over page 1."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    from pyhanko.pdf_utils import generic

    annotation = generic.DictionaryObject(
        {
            HankoName("/Type"): HankoName("/Annot"),
            HankoName("/Subtype"): HankoName("/FreeText"),
            HankoName("/Rect"): generic.ArrayObject([generic.FloatObject(v) for v in (50, 600, 500, 660)]),
            HankoName("/Contents"): HankoText("三地均无违法违规记录"),
            HankoName("/DA"): HankoText("/Helv 12 Tf 0 g"),
        }
    )
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    page[HankoName("/Annots")] = generic.ArrayObject([writer.add_object(annotation)])
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def changed_subject(pdf: bytes) -> bytes:
    """A revision appended by pypdf: the document information changed."""
    writer = PdfWriter(io.BytesIO(pdf), incremental=True)
    writer.add_metadata({"/Subject": "已核验"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


CHANGES: dict[str, Callable[[bytes], bytes]] = {
    "flipped-byte": flipped,
    "added-annotation": added_text,
    "changed-information": changed_subject,
}
# What pyHanko's validator judges a failed signature. Changing the document information
# in a later revision it reports (the signature no longer covers the file, and the change
# is classed) but still calls valid; the gateway refuses any revision after its own.
CONTENT_CHANGES = ("flipped-byte", "added-annotation")


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_pdf_changed_after_signing_fails_pyhanko_and_jjj_verify(signed: Signed, change: str, tmp_path: Path) -> None:
    changed = CHANGES[change](signed.pdf)
    assert changed != signed.pdf
    status = pyhanko_status(changed)
    assert status.bottom_line is (change not in CONTENT_CHANGES)
    if change == "flipped-byte":
        assert not status.intact
    else:
        assert status.coverage is not SignatureCoverageLevel.ENTIRE_FILE
        assert status.modification_level is not ModificationLevel.NONE

    with pytest.raises(VerificationError) as caught:
        verify_pdf(changed, KEYRING, trust=federation().trust, verify_url_for=url_for)
    assert "签名后被改动" in caught.value.detail or "签发后被增量修改" in caught.value.detail

    done = jjj_verify(changed, tmp_path)
    assert done.returncode == 1 and "NOT GENUINE" in done.stderr


def test_a_pdf_without_the_organisations_signature_is_refused(signed: Signed, tmp_path: Path) -> None:
    pages = render(signed.document, signed.jws, verify_url=url_for(signed.document))
    with pytest.raises(VerificationError, match="没有签发机构的电子签名"):
        verify_pdf(pages, KEYRING, trust=federation().trust)
    done = jjj_verify(pages, tmp_path)
    assert done.returncode == 1 and "carries no signature" in done.stderr


def test_a_signature_by_another_certificate_is_refused(signed: Signed, tmp_path: Path) -> None:
    pages = render(signed.document, signed.jws, verify_url=url_for(signed.document))
    certs = federation().directory
    # The gateway's TLS certificate from the same CA: not a document-signing one.
    tls = Seal.from_files(certs / "gateway.pem", certs / "gateway.key")
    # A document-signing certificate of another CA.
    init_ca(tmp_path / "other")
    issue_document_signer(tmp_path / "other", ORGANISATION)
    stranger = Seal.from_files(tmp_path / "other" / "seal.pem", tmp_path / "other" / "seal.key")
    for seal in (tls, stranger):
        with pytest.raises(VerificationError, match="不受信任"):
            verify_pdf(sealed(pages, seal), KEYRING, trust=federation().trust)
    # pyHanko agrees about the stranger, whose certificate does not chain to the CA.
    assert not pyhanko_status(sealed(pages, stranger)).trusted
    # Trusting the other CA instead does not make the federation's seal valid.
    with pytest.raises(VerificationError, match="不受信任"):
        verify_pdf(signed.pdf, KEYRING, trust=SealTrust.from_file(tmp_path / "other" / "ca.pem"))


# --------------------------------------------------------------------------- what shows


def rendered(pdf: bytes, index: int, scale: float = SCALE) -> tuple[Image.Image, float]:
    """Page ``index`` (negative: from the end) as a reader shows it (forms and
    annotations drawn), and its height in points."""
    document = pdfium.PdfDocument(pdf)
    try:
        document.init_forms()
        page = document[index % len(document)]
        return page.render(scale=scale, may_draw_forms=True).to_pil().convert("RGB"), page.get_height()
    finally:
        document.close()


def red(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 170 and g < 110 and b < 110


def test_the_last_page_shows_the_round_red_seal_where_it_is_drawn(signed: Signed) -> None:
    image, height = rendered(signed.pdf, -1)
    reader = PdfReader(io.BytesIO(signed.pdf))
    (field,) = [a.get_object() for a in reader.pages[-1]["/Annots"] if a.get_object().get("/T") == FIELD]
    _, y1, _, y2 = (float(v) for v in field["/Rect"])
    # The seal's centre: 36 mm left of the right margin, level with the signature field.
    cx, cy = (A4[0] - 16 * mm - 36 * mm) * SCALE, (height - (y1 + y2) / 2) * SCALE
    rim = 19.2 * mm * SCALE
    on_rim = [
        red(image.getpixel((round(cx + rim * math.cos(a)), round(cy + rim * math.sin(a)))))
        for a in (math.radians(d) for d in range(0, 360, 5))
    ]
    assert sum(on_rim) / len(on_rim) > 0.9, "the seal's ring is not drawn in red"
    star = [red(image.getpixel((round(cx + dx), round(cy + dy)))) for dx in (-2, 0, 2) for dy in (-2, 0, 2)]
    assert all(star), "no red star in the middle of the seal"
    outside = [
        red(image.getpixel((round(cx + 26 * mm * SCALE * math.cos(a)), round(cy + 26 * mm * SCALE * math.sin(a)))))
        for a in (math.radians(d) for d in range(0, 360, 5))
    ]
    assert sum(outside) < 4  # a round seal of the drawn size, not a red blot
    # Nothing red on a page without records elsewhere: page 1 of a clean report.
    clean = document("clean")
    clean_pdf = render(clean, sign(clean, KEY), verify_url=url_for(clean), seal=federation().seal)
    first, _ = rendered(clean_pdf, 0)
    pixels = numpy.asarray(first).reshape(-1, 3)
    assert sum(1 for pixel in pixels if red(tuple(int(v) for v in pixel))) < 50  # type: ignore[arg-type]


@pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-chi-sim; .ci/run installs them)",
)
def test_ocr_reads_the_subjects_name_and_the_organisation_on_the_pages(signed: Signed, tmp_path: Path) -> None:
    languages = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout
    if "chi_sim" not in languages.split():
        pytest.skip("tesseract has no Simplified Chinese model (Debian: tesseract-ocr-chi-sim)")

    def ocr(index: int) -> str:
        image, _ = rendered(signed.pdf, index, scale=4)  # 288 dpi
        path = tmp_path / f"page-{index}.png"
        image.convert("L").save(path)
        done = subprocess.run(
            ["tesseract", str(path), "-", "-l", "chi_sim"], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return "".join(done.stdout.split())

    assert f"信用主体{SUBJECT_NAME}" in ocr(0)  # as printed in the details table
    last = ocr(-1)
    assert "电子签名" in last and ORGANISATION in last.split("签名机构", 1)[-1][:16]  # the signature field


# --------------------------------------------------------------------------- the gateway


async def test_the_portal_prints_a_signed_report_and_its_page_names_organisation_and_rules(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
    assert status == 201, body
    assert body["report"]["issuer_name"] == ORGANISATION and body["report"]["issuer"] == "jjj-gateway"
    assert body["report"]["profile"]["name"] == "天津市公共信用报告（无违法违规证明专用版）2023 年版"
    cookie = {"Cookie": f"jjj_session={token}"}
    status, page, _ = await api.call("GET", f"/reports/{body['report_no']}", headers=cookie)
    assert status == 200
    assert ORGANISATION in page and "天津市公共信用报告（无违法违规证明专用版）2023 年版" in page
    assert "查询区间截止于申请日前第 7 个工作日" in page
    assert "tianjin-2023" not in page and "jjj-gateway" not in page and "验证码" not in page

    status, pdf, reply = await api.fetch("GET", f"/reports/{body['report_no']}/report.pdf", headers=cookie)
    assert status == 200 and reply.content_type == "application/pdf"
    assert (await asyncio.to_thread(pyhanko_status, pdf)).bottom_line
    url = f"{running.url}/verify?code={body['verification_code']}"
    trust = federation().trust
    document = await asyncio.to_thread(
        verify_pdf, pdf, running.service.keyring, trust=trust, verify_url_for=lambda _: url
    )
    assert document == body["report"]

    # An instance without a document-signing certificate prints no unsigned report.
    running.service.seal = None
    status, refused, _ = await api.call("GET", f"/reports/{body['report_no']}/report.pdf", headers=cookie)
    assert status == 409 and "文书签名证书" in refused and "JJJ_GATEWAY" not in refused


# --------------------------------------------------------------------------- configuration


def test_the_organisation_and_its_certificate_come_from_the_settings(tmp_path: Path) -> None:
    from credit.errors import FailedPrecondition, InvalidInput
    from gateway.server import load_seal
    from gateway.settings import GatewaySettings

    fed = federation()
    env = {
        "JJJ_GATEWAY_ORGANISATION": ORGANISATION,
        "JJJ_GATEWAY_CONTACT": "022-00000000",
        "JJJ_GATEWAY_SEAL_CERT": str(fed.seal_cert),
        "JJJ_GATEWAY_SEAL_KEY": str(fed.seal_key),
        # The CA handed-in PDFs are checked against defaults to the federation CA.
        "JJJ_GATEWAY_TLS_CERT": str(fed.directory / "gateway.pem"),
        "JJJ_GATEWAY_TLS_KEY": str(fed.directory / "gateway.key"),
        "JJJ_GATEWAY_TLS_CA": str(fed.ca),
    }
    settings = GatewaySettings.from_env(env)
    assert (settings.organisation, settings.contact) == (ORGANISATION, "022-00000000")
    seal, trust = load_seal(settings)
    assert seal is not None and seal.organisation == ORGANISATION
    assert trust is not None and trust.roots == fed.trust.roots
    # The certificate must name the organisation the reports name.
    with pytest.raises(FailedPrecondition, match="天津市公共信用信息中心"):
        load_seal(GatewaySettings.from_env({**env, "JJJ_GATEWAY_ORGANISATION": "北京市公共信用信息中心"}))
    with pytest.raises(InvalidInput, match="seal_key"):
        GatewaySettings.from_env({**env, "JJJ_GATEWAY_SEAL_KEY": ""})
    with pytest.raises(InvalidInput, match="organisation"):
        GatewaySettings.from_env({**env, "JJJ_GATEWAY_ORGANISATION": "  "})
    # Unconfigured: a demo organisation, marked as such, and no seal.
    plain = GatewaySettings.from_env({})
    assert "演示" in plain.organisation and load_seal(plain) == (None, None)


def test_the_document_signing_certificate_is_for_signing_documents_only(tmp_path: Path) -> None:
    from credit.errors import InvalidInput

    fed = federation()
    chain = x509.load_pem_x509_certificates(fed.seal_cert.read_bytes())
    assert len(chain) == 2 and chain[1].subject == chain[0].issuer  # the signer, then the CA
    signer = chain[0]
    assert signer.subject.rfc4514_string() == f"CN={ORGANISATION},O={ORGANISATION},C=CN"
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    purposes = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert DOCUMENT_SIGNING in purposes and x509.ExtendedKeyUsageOID.SERVER_AUTH not in purposes
    with pytest.raises(InvalidInput):
        issue_document_signer(fed.directory, "   ")

    done = subprocess.run(
        [sys.executable, "-m", "jjj", "certs", "issue", str(fed.directory), "seal-beijing"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--organisation" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jjj",
            "certs",
            "issue",
            str(fed.directory),
            "seal-beijing",
            "--organisation",
            "北京市公共信用信息中心",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert Seal.from_files(fed.directory / "seal-beijing.pem", fed.directory / "seal-beijing.key").organisation == (
        "北京市公共信用信息中心"
    )
