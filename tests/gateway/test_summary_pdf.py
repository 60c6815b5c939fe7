"""The signed batch summary as a PDF: deterministic, printed in Chinese with its counts, and
carrying its JWS so that the PDF alone verifies — with our verifier and with a standard
JOSE library — while a PDF whose attachment was swapped or changed does not."""

from __future__ import annotations

import io
import json
from typing import Any

import pypdfium2 as pdfium
import pytest
from jwcrypto import jwk, jws
from pypdf import PdfReader, PdfWriter

from credit.signing import BATCH_SUMMARY_FORMAT, Keyring, SigningKey, TokenType, VerificationError, sign
from gateway.batch.summary_pdf import ATTACHMENT, attached_summary, render_summary

KEY = SigningKey.generate()
KEYRING = Keyring([KEY.private.public_key()])

SUMMARY: dict[str, Any] = {
    "format": BATCH_SUMMARY_FORMAT,
    "title": "协助核查情况统计表",
    "job_id": "b_0123456789abcdef",
    "purpose": "评优评先资格审查",
    "requested_by": "agency",
    "profile": "tianjin-2023",
    "years": 3,
    "created_at": "2025-06-16T01:02:03Z",
    "finished_at": "2025-06-16T01:04:05Z",
    "status": "done",
    "counts": {
        "subjects": 58,
        "rejected": 3,
        "with_records": 7,
        "clear": 41,
        "incomplete": 2,
        "duplicates": 4,
        "empty": 1,
    },
    "regions": {
        region: {"with_records": 3, "no_record": 46, "unavailable": 1} for region in ("beijing", "tianjin", "hebei")
    },
    "table_csv_sha256": "ab" * 32,
    "issuer": "京津冀公共信用报告网关",
}


def _text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def test_the_summary_pdf_prints_the_counts_and_verifies_from_its_attachment() -> None:
    token = sign(SUMMARY, KEY, typ=TokenType.BATCH_SUMMARY)
    pdf = render_summary(SUMMARY, token)
    assert pdf == render_summary(SUMMARY, token)  # deterministic
    text = _text(pdf)
    for words in ("协助核查情况统计表（汇总）", "b_0123456789abcdef", "评优评先资格审查", "名单行数", "重复", "空行",
                  "第 1 页 / 共 1 页", "ab" * 32, "2025-06-16 09:04:05"):  # fmt: skip
        assert words in text, words
    assert attached_summary(pdf, KEYRING) == SUMMARY
    # Anyone can check the attachment with a standard JOSE library and the published key.
    attached = PdfReader(io.BytesIO(pdf)).attachments[ATTACHMENT][0].decode("ascii")
    public = jwk.JWK.from_pyca(KEY.private.public_key())
    checked = jws.JWS()
    checked.deserialize(attached)
    checked.verify(public, alg="Ed25519")
    assert json.loads(checked.payload) == SUMMARY


def _with_attachment(pdf: bytes, data: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(ATTACHMENT, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_summary_pdf_with_a_changed_or_missing_attachment_does_not_verify() -> None:
    token = sign(SUMMARY, KEY, typ=TokenType.BATCH_SUMMARY)
    header, payload, signature = token.split(".")
    forged = sign({**SUMMARY, "counts": {**SUMMARY["counts"], "with_records": 0}}, SigningKey.generate(),
                  typ=TokenType.BATCH_SUMMARY)  # fmt: skip
    other_kind = sign(SUMMARY, KEY, typ=TokenType.AUDIT_CHECKPOINT)
    none_attached = PdfWriter()
    none_attached.add_blank_page(200, 200)
    bare = io.BytesIO()
    none_attached.write(bare)
    for bad in (
        bare.getvalue(),  # no attachment
        _with_attachment(render_summary(SUMMARY, token), b""),  # a second attachment of that name
        render_summary(SUMMARY, forged),  # signed by a key not published
        render_summary(SUMMARY, f"{header}.{payload[:-4]}AAAA.{signature}"),  # the payload changed
        render_summary(SUMMARY, other_kind),  # another kind of token
        b"%PDF-1.7 not really",
    ):
        with pytest.raises(VerificationError):
            attached_summary(bad, KEYRING)
