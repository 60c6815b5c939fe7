"""The grant slip (授权凭条): one small printable page with an authorisation code, its QR
code and the grant's terms, for a subject to hand to or file for the grantee.

The code is shown once and kept only as a hash, so the slip is made at the moment the
grant is created, from what the grantor was just shown, and saved by the grantor; the
gateway keeps no copy. Set in the report's faces (see :mod:`gateway.reports.pdfkit`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A6  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from credit.clock import beijing_text
from gateway.reports.pdfkit import draw_qr, draw_text, register_fonts, text_width

_W, _H = A6
_MARGIN = 9 * mm
_QR = 52 * mm


@dataclass(frozen=True, slots=True)
class SlipTerms:
    """What the slip says besides the code: whose report, for whom, why, until when."""

    subject: str  # the subject's name and identifier, as the grantor knows it
    grantee: str  # the grantee organisation (name and code), an account, or 任何持码人
    purpose: str
    expires_at: datetime
    max_uses: int


def grant_slip(code: str, url: str, terms: SlipTerms) -> bytes:
    """An A6 PDF with ``code``, the QR code of ``url`` (the page that redeems it) and
    ``terms``.

    Raises nothing for any text: characters neither face has are left blank.
    """
    register_fonts()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A6, invariant=True, pageCompression=1)
    canvas.setTitle("信用报告授权凭条")
    canvas.setFillColor(colors.HexColor("#1f3a5f"))
    draw_text(canvas, _W / 2, _H - _MARGIN - 4 * mm, "信用报告授权凭条", 13, align="center")
    draw_qr(canvas, url, (_W - _QR) / 2, _H - _MARGIN - 10 * mm - _QR, _QR)
    canvas.setFillColor(colors.black)
    y = _H - _MARGIN - 15 * mm - _QR
    draw_text(canvas, _W / 2, y, code, 11, align="center")
    y -= 4 * mm
    canvas.setFillColor(colors.HexColor("#5c5c5c"))
    draw_text(canvas, _W / 2, y, "授权码（扫码或在“凭授权码查看”页输入）", 7, align="center")
    canvas.setFillColor(colors.black)
    y -= 8 * mm
    for label, value in (
        ("授权主体", terms.subject),
        ("被授权方", terms.grantee),
        ("用途", terms.purpose),
        ("有效期至", beijing_text(terms.expires_at)),
        ("可用次数", f"{terms.max_uses} 次"),
    ):
        y = _field(canvas, y, label, value)
    canvas.setFillColor(colors.HexColor("#5c5c5c"))
    draw_text(canvas, _MARGIN, _MARGIN, url, 6)
    draw_text(canvas, _MARGIN, _MARGIN + 4 * mm, "授权码只在创建时显示一次，请妥善保管，勿交给无关人员。", 6.5)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _field(canvas: Canvas, y: float, label: str, value: str) -> float:
    """One labelled value, wrapped to the page's width (a name's bracketed code on a line
    of its own when the whole does not fit); the baseline below it."""
    size, indent = 8.5, 17 * mm
    room = _W - 2 * _MARGIN - indent
    draw_text(canvas, _MARGIN, y, f"{label}：", size)
    head, bracket, tail = value.partition("（")
    parts = [head, bracket + tail] if bracket and text_width(value, size) > room else [value]
    for part in parts:
        line = ""
        for char in part:
            if text_width(line + char, size) > room:
                draw_text(canvas, _MARGIN + indent, y, line, size)
                y -= 4.5 * mm
                line = ""
            line += char
        draw_text(canvas, _MARGIN + indent, y, line, size)
        y -= 4.5 * mm
    return float(y - 1 * mm)
