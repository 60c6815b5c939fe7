"""The issuing organisation's signature on a printed report (PAdES), and checking it.

A printed report is written in two revisions: the pages (what :mod:`gateway.reports.pdf`
renders from the signed report, byte for byte the same every time), then one incremental
revision that adds the organisation's signature. That signature is a PAdES B-B
certification signature (``ETSI.CAdES.detached``, DocMDP "no changes") by the
organisation's document-signing certificate from the federation CA
(:func:`federation.tls.issue_document_signer`), with a visible signature field. Any PDF
reader then shows who signed the report and that nothing changed since. No timestamp
authority is reachable offline, so the signing time is the signer's own claim (B-B).

:func:`check_seal` is the verifier's side, on the whole file: exactly one signature, its
bytes intact, its certificate a document-signing one that chains to a trusted CA, and
covering the entire file (nothing appended after it). It answers where the signed pages
end, so that the caller can prove those pages are what the attached report prints as.

Errors::

    VerificationError (credit.signing)  the signature is missing, broken, untrusted, or
                                        something was changed or added after it
    FailedPrecondition (credit.errors)  the seal files cannot be read or do not fit
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.content import PdfContent
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from credit.errors import FailedPrecondition
from credit.signing import VerificationError
from federation.tls import DOCUMENT_SIGNING

FIELD = "IssuerSeal"
REASON = "签发公共信用报告"
# What a verifier demands of the signer's certificate: both key usages, and the
# documentSigning extended key usage, which the federation's TLS certificates lack.
_KEY_USAGE = KeyUsageConstraints(
    key_usage=frozenset({"digital_signature", "non_repudiation"}),
    match_all_key_usages=True,
    extd_key_usage=frozenset({DOCUMENT_SIGNING.dotted_string}),
    explicit_extd_key_usage_required=True,
)
# The signing revision holds a signature field, its appearance and a certificate chain:
# tens of KiB. Anything much larger was not written by a gateway.
MAX_SIGNING_REVISION = 1024 * 1024

T = TypeVar("T")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """pyHanko's signing and validation are coroutines: run one to the end here, in a
    thread of its own when this thread already runs an event loop (a caller in a handler
    should use ``asyncio.to_thread`` anyway: both take CPU)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


_UPDATED = "PDF 在签发后被增量修改 (the PDF holds an incremental update appended after the gateway's revision: {})"


@dataclass(frozen=True, slots=True)
class SealPlace:
    """Where the visible signature field goes: a page (counted from 0) and a box in
    points from the page's lower left corner (x1, y1, x2, y2)."""

    page: int
    box: tuple[float, float, float, float]

    @property
    def whole_points(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.box
        return round(x1), round(y1), round(x2), round(y2)


def _organisation(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class _ImportedPage(PdfContent):
    """The first page of a PDF held in memory, as a signature field's appearance."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = data

    def render(self) -> bytes:
        writer = self._ensure_writer
        page = writer.import_page_as_xobject(PdfFileReader(io.BytesIO(self._data)), page_ix=0)
        self.resources.xobject["/Appearance"] = page
        x1, y1, x2, y2 = page.get_object()["/BBox"]
        self.box = BoxConstraints(width=abs(x1 - x2), height=abs(y1 - y2))
        return b"/Appearance Do"


class Seal:
    """The issuing organisation's document-signing key and certificate chain.

    Construct it with :meth:`from_files`; :meth:`sign` adds the signature revision to a
    rendered report.
    """

    def __init__(self, certificates: Sequence[x509.Certificate], key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        if not certificates:
            raise FailedPrecondition("the document-signing certificate file holds no certificate")
        self.certificate = certificates[0]
        self.organisation = _organisation(self.certificate)
        if not self.organisation:
            raise FailedPrecondition("the document-signing certificate names no organisation (O) in its subject")
        der_key = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._signer = signers.SimpleSigner(
            signing_cert=_asn1(self.certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [_asn1(c) for c in certificates[1:]]
            ),
        )

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path) -> Seal:
        """The seal in a PEM certificate file (the signer's certificate first, then its
        chain) and a PEM private key file.

        Raises:
            FailedPrecondition: a file cannot be read, holds no certificate or no usable
                key, or the key does not belong to the certificate.
        """
        try:
            certificates = x509.load_pem_x509_certificates(Path(cert).read_bytes())
            private = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise FailedPrecondition(f"cannot read the document-signing certificate or key: {exc}") from exc
        if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise FailedPrecondition("the document-signing key must be an ECDSA or RSA key")
        raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if certificates and private.public_key().public_bytes(*raw) != certificates[0].public_key().public_bytes(*raw):
            raise FailedPrecondition("the document-signing key does not belong to its certificate")
        return cls(certificates, private)

    def sign(self, pdf: bytes, place: SealPlace, appearance: bytes) -> bytes:
        """``pdf`` with the organisation's signature appended as one incremental
        revision: a certification signature (no changes allowed after it) whose field
        sits at ``place`` and shows the first page of ``appearance``.

        Raises:
            FailedPrecondition: pyHanko could not sign (a damaged ``pdf``, or a key it
                cannot use).
        """
        meta = signers.PdfSignatureMetadata(
            field_name=FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            name=self.organisation,
            reason=REASON,
        )
        style = StaticStampStyle(background=_ImportedPage(appearance), border_width=0, background_opacity=1.0)
        signer = signers.PdfSigner(
            meta,
            self._signer,
            stamp_style=style,
            # Whole points: pyHanko writes the field's rectangle as integers.
            new_field_spec=fields.SigFieldSpec(FIELD, on_page=place.page, box=place.whole_points),
        )
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
            signed = _run(signer.async_sign_pdf(writer))
        except (SigningError, ValueError, OSError) as exc:
            raise FailedPrecondition(f"the report could not be signed: {exc}") from exc
        return bytes(signed.getvalue())


@dataclass(frozen=True, slots=True)
class SealTrust:
    """The CA certificates a printed report's signature must chain to."""

    roots: tuple[x509.Certificate, ...]

    @classmethod
    def from_file(cls, path: str | Path) -> SealTrust:
        """The CA certificates in a PEM file (the federation CA's ``ca.pem``).

        Raises:
            FailedPrecondition: the file cannot be read or holds no certificate.
        """
        try:
            roots = tuple(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:
            raise FailedPrecondition(f"cannot read the CA certificates in {path}: {exc}") from exc
        return cls(roots)


@dataclass(frozen=True, slots=True)
class SealCheck:
    """What a verified signature says: who signed, and where the signed pages end."""

    organisation: str
    pages_end: int  # the length of the first revision: the rendered pages


def _pages_end(data: bytes, reader: PdfFileReader) -> int:
    """Where the first revision ends: its ``%%EOF`` and the end of that line."""
    after_xref = reader.xrefs.get_xref_container_info(0).end_location
    marker = data.find(b"%%EOF", after_xref)
    if marker < 0:
        raise VerificationError("PDF 结构无法解析 (the first revision has no end-of-file marker)")
    end = marker + len(b"%%EOF")
    while end < len(data) and data[end : end + 1] in (b"\r", b"\n"):
        end += 1
    return end


def _revision_start(reader: PdfFileReader, revision: int) -> int:
    """Where a revision's first object begins (its cross-reference table says)."""
    offsets = [
        reader.xrefs.get_historical_ref(ref, revision) for ref in reader.xrefs.explicit_refs_in_revision(revision)
    ]
    places = [offset for offset in offsets if isinstance(offset, int)]
    return min(places) if places else -1


def check_seal(data: bytes, trust: SealTrust) -> SealCheck:
    """The organisation's signature on a printed report, checked over the whole file.

    There must be exactly one signature, in the second and last revision; its bytes
    intact and its cryptography sound; by a certificate with digitalSignature,
    nonRepudiation and the documentSigning extended key usage that chains to one of
    ``trust``'s CAs (valid now: a B-B signature carries no timestamp); covering the
    entire file, with no modification after it (DocMDP).

    Raises:
        VerificationError: no signature or several; not readable; the bytes changed since
            signing; an untrusted or unfit certificate; a revision appended after it.
    """
    if not trust.roots:
        raise VerificationError("未配置可信的签发机构根证书 (no CA is trusted for report signatures)")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        signatures = reader.embedded_signatures
    except Exception as exc:  # any failure to parse untrusted bytes means: not a readable signature
        raise VerificationError(
            f"PDF 的电子签名无法读取 (the PDF's signature cannot be read: {type(exc).__name__}: {exc})"
        ) from exc
    if not signatures:
        raise VerificationError(
            "PDF 没有签发机构的电子签名 (the PDF carries no signature of the issuing organisation: PAdES)"
        )
    if len(signatures) != 1:
        raise VerificationError(f"PDF 含有多个电子签名 (the PDF carries {len(signatures)} signatures, not one)")
    signature = signatures[0]
    context = ValidationContext(trust_roots=[_asn1(root) for root in trust.roots], allow_fetching=False)
    try:
        status: PdfSignatureStatus = _run(
            async_validate_pdf_signature(signature, context, key_usage_settings=_KEY_USAGE)
        )
    except Exception as exc:  # pyHanko's errors on malformed signatures are many and untyped
        raise VerificationError(
            f"PDF 的电子签名无法核验 (the PDF's signature cannot be checked: {type(exc).__name__}: {exc})"
        ) from exc
    if not status.intact or not status.valid:
        raise VerificationError(
            "PDF 在签发机构签名后被改动 (the PDF was changed after the issuing organisation signed it: "
            "the signature does not match its bytes)"
        )
    if not status.trusted:
        raise VerificationError(
            "PDF 的签名证书不受信任 (the PDF's signing certificate is not a document-signing certificate of the "
            f"federation CA: {status.summary()})"
        )
    if status.coverage is not SignatureCoverageLevel.ENTIRE_FILE or status.modification_level is not (
        ModificationLevel.NONE
    ):
        covered = status.coverage.name.lower() if status.coverage is not None else "an unknown part"
        raise VerificationError(_UPDATED.format(f"the signature covers {covered}"))
    if status.docmdp_ok is False:
        raise VerificationError(_UPDATED.format("the certification signature allows no changes"))
    if reader.xrefs.total_revisions != 2 or signature.signed_revision != 1:
        raise VerificationError(
            "PDF 的修订结构与签发时不同 (the report's pages and its signature must be the file's two revisions, "
            f"found {reader.xrefs.total_revisions})"
        )
    end = _pages_end(data, reader)
    if _revision_start(reader, 1) != end:
        raise VerificationError(_UPDATED.format("bytes between the report's pages and its signature"))
    if len(data) - end > MAX_SIGNING_REVISION:
        raise VerificationError(_UPDATED.format("the signing revision is larger than any the gateway writes"))
    return SealCheck(_organisation(x509.load_der_x509_certificate(signature.signer_cert.dump())), end)
