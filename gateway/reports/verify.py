"""Reading a report someone hands in: the one place that knows the forms a report comes
in, for the portal's upload, the API's ``POST /api/v1/verify`` and ``jjj verify``.

A report comes as the printed PDF (the issuing organisation's PDF signature checked
against the trusted CA, its signed document attached, the pages proven to be exactly what
that document prints as), as the compact JWS, as JSON holding the JWS
(``{"jws": …}``), or — on the portal — as the bare JSON document, which is genuine only
when it is exactly what the registry's report of that verification code signed.
:func:`read_upload` tells which; :func:`signed_document` is the offline check (no
registry) the command line makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from credit.signing import Keyring, TokenType, VerificationError, verify
from gateway.reports.pdf import check_pdf
from gateway.reports.seal import SealTrust

UNRECOGNISED = "文件无法识别 (not a PDF, a signed report or JSON)"


def verify_address(public_url: str, code: str) -> str:
    """The address of a site's verify page for a code: what a report's QR code carries."""
    return f"{public_url.rstrip('/')}/verify?code={code}"


@dataclass(frozen=True, slots=True)
class Upload:
    """What a handed-in file turned out to be: exactly one field is set."""

    token: str = ""  # a compact JWS, sent as it is or inside JSON
    printed: dict[str, Any] | None = None  # the document of a PDF proven genuine
    bare: dict[str, Any] | None = None  # an unsigned report document
    sealed_by: str = ""  # a PDF's: the organisation its signing certificate names
    holder_name: str = ""  # a person's own PDF's: the full name its pages print for them


def read_upload(
    data: bytes,
    keyring: Keyring,
    *,
    trust: SealTrust | None,
    verify_url_for: Callable[[dict[str, Any]], str] | None = None,
) -> Upload:
    """Recognise a handed-in report; a PDF is verified here (its document with it), a
    token is left for the caller, who also looks it up in the registry.

    A PDF's signature must chain to a CA in ``trust`` (None: no PDF can be verified);
    ``verify_url_for`` gives the verify page the PDF's QR code must lead to (see
    :func:`gateway.reports.pdf.verify_pdf`). Reading a PDF takes a while: call this off
    the event loop.

    Raises:
        VerificationError: a PDF that is not genuine (unsigned, its signature broken or
            untrusted, changed after signing, or too large to check), JSON that cannot
            be read, or a file that is none of the forms above.
    """
    if data.startswith(b"%PDF"):
        printed = check_pdf(data, keyring, trust=trust, verify_url_for=verify_url_for)
        return Upload(printed=printed.document, sealed_by=printed.sealed_by, holder_name=printed.holder_name)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise VerificationError(UNRECOGNISED) from None
    if not text.startswith("{"):
        return Upload(token=text)
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:  # malformed, too deep, or a number too long
        raise VerificationError(f"JSON 无法解析 (the JSON cannot be read): {exc}") from None
    if isinstance(body, dict) and isinstance(body.get("jws"), str):
        token = body["jws"].strip()
        if not token.isascii():  # a compact JWS is base64url and dots; JSON may smuggle in anything
            raise VerificationError("不是完整的签名报告 (not a compact JWS: it holds characters outside ASCII)")
        return Upload(token=token)
    if isinstance(body, dict) and isinstance(body.get("verification_code"), str):
        return Upload(bare=body)
    raise VerificationError(UNRECOGNISED)


def signed_document(
    data: bytes,
    keyring: Keyring,
    *,
    trust: SealTrust | None,
    verify_url_for: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """The report document a file carries, its signature (and a PDF's signature and
    pages) proven offline, without asking any registry.

    Raises:
        VerificationError: not genuine, not a report (a session or a batch summary is
            signed by the same keys), a bare document (nothing proves it without the
            registry), or not one of the forms a report comes in.
    """
    upload = read_upload(data, keyring, trust=trust, verify_url_for=verify_url_for)
    if upload.printed is not None:
        return upload.printed
    if upload.bare is not None:
        raise VerificationError(
            "未签名的报告内容须在签发网站核验 (a bare report document can only be checked against the registry)"
        )
    return verify(upload.token, keyring, typ=TokenType.REPORT)
