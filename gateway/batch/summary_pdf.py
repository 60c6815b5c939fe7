"""The signed summary of a batch job (协助核查情况统计表 · 汇总) as an A4 PDF page, set with the
printed report's fonts and layout (:mod:`gateway.reports.pdf`): the job, the counts of
the table's rows (which add up to the rows of the list), each region's counts and the
table's SHA-256, with the task number and "第 x 页 / 共 y 页" on every page.

The signed summary itself is attached as ``summary.jws`` (a compact JWS, typ
``jjj-batch-summary+jws``), as the report PDF attaches its ``report.jws``, so the PDF
alone can be verified offline: its attachment against the gateway's published keys with
any JOSE library (:func:`attached_summary` does it with ours), and the CSV table
downloaded for the job against the SHA-256 the summary signs. The output is
deterministic: the same summary and JWS always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, ByteStringObject, NameObject, TextStringObject
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Spacer  # type: ignore[import-untyped]

from credit.profiles import profiles
from credit.regions import Region
from credit.signing import Keyring, TokenType, VerificationError, verify
from gateway.reports.pdf import (
    _FRAME_BOTTOM,
    _GREY_BG,
    _LOCK,
    _MARGIN_X,
    _MUTED,
    _PAGE_H,
    _PAGE_W,
    _RULE,
    _WIDTH,
    LATIN,
    _beijing_time,
    _canvas_maker,
    _draw_text,
    _p,
    _pdf_date,
    _styles,
    _table,
    _text,
)

ATTACHMENT = "summary.jws"
ATTACHMENT_MIME = "application/jose"
RENDERER = "jjj-batch-summary-pdf/1"
TITLE = "协助核查情况统计表（汇总）"

_HEADER_BOTTOM = _PAGE_H - 26 * mm
_FRAME_TOP = _PAGE_H - 30 * mm
_FOOTER_TOP = 16 * mm

# The rows of the counts table: what each count is called, in the order read.
COUNT_ROWS = (
    ("subjects", "名单行数（合计）"),
    ("with_records", "有记录"),
    ("clear", "三地均无记录"),
    ("incomplete", "不完整（部分地区暂不可用）"),
    ("rejected", "代码无效"),
    ("duplicates", "重复（与前面某行代码相同，只核查一次）"),
    ("empty", "空行"),
)
_REGION_COUNTS = (("with_records", "有记录"), ("no_record", "无记录"), ("unavailable", "暂不可用"))


def _facts(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    profile = profiles().get(str(document.get("profile")))
    return [
        ("任务编号", _text(document.get("job_id"))),
        ("核查事由", _text(document.get("purpose"))),
        ("提交人", _text(document.get("requested_by"))),
        ("报告规则", profile.title if profile is not None else _text(document.get("profile"))),
        ("查询年限", f"近 {_text(document.get('years'))} 年"),
        ("提交时间", _beijing_time(document.get("created_at"))),
        ("完成时间", _beijing_time(document.get("finished_at"))),
        ("签发机构", _text(document.get("issuer"))),
    ]


def _story(document: Mapping[str, Any]) -> list[Any]:
    s = _styles()
    counts = document.get("counts", {})
    regions = document.get("regions", {})
    facts = _table(
        [[_p(key, s.cell_head), _p(value, s.cell)] for key, value in _facts(document)],
        [30 * mm, _WIDTH - 30 * mm],
        [("BACKGROUND", (1, 0), (1, 0), colors.white), ("BACKGROUND", (0, 0), (0, -1), _GREY_BG)],
    )
    counted = _table(
        [[_p("行的类别", s.cell_head), _p("行数", s.cell_head)]]
        + [[_p(label, s.cell), _p(_text(counts.get(key, 0)), s.cell)] for key, label in COUNT_ROWS],
        [_WIDTH - 40 * mm, 40 * mm],
    )
    by_region = _table(
        [[_p(h, s.cell_head) for h in ("地区", *(label for _, label in _REGION_COUNTS))]]
        + [
            [
                _p(region.name_zh, s.cell),
                *(_p(_text(regions[region.value].get(k, 0)), s.cell) for k, _ in _REGION_COUNTS),
            ]
            for region in Region
            if region.value in regions
        ],
        [30 * mm, *([(_WIDTH - 30 * mm) / 3] * 3)],
    )
    return [
        _p(TITLE, s.title),
        _p("一、核查任务", s.heading),
        facts,
        _p("二、核查情况", s.heading),
        _p("名单的每一行计入一类，各类行数之和等于名单行数。", s.small),
        Spacer(1, 1.5 * mm),
        counted,
        _p("三、各地区查询情况（已核查的主体）", s.heading),
        by_region,
        _p("四、核验", s.heading),
        _p(
            f"本 PDF 附有签名汇总文件 {ATTACHMENT}（JWS，Ed25519 签名）。任何 JOSE 库均可用平台公布的公钥"
            "（/.well-known/jwks.json）核验其签名。签名汇总载明统计表 CSV 文件的 SHA-256 摘要："
            f"{_text(document.get('table_csv_sha256'))}，可据此核对下载的统计表未被改动。",
            s.body,
        ),
    ]


def _decorate(document: Mapping[str, Any]) -> Callable[[Any, int, int], None]:
    job_id = _text(document.get("job_id"))
    issuer = _text(document.get("issuer"))

    def decorate(canvas: Any, number: int, total: int) -> None:
        canvas.saveState()
        left, right, top = _MARGIN_X, _PAGE_W - _MARGIN_X, _PAGE_H - 10 * mm
        canvas.setFillColor(_MUTED)
        _draw_text(canvas, left, top - 4 * mm, TITLE, 9)
        _draw_text(canvas, right, top - 4 * mm, f"任务编号：{job_id}", 9, align="right")
        canvas.setStrokeColor(_RULE)
        canvas.setLineWidth(0.6)
        canvas.line(left, _HEADER_BOTTOM, right, _HEADER_BOTTOM)
        canvas.line(left, _FOOTER_TOP, right, _FOOTER_TOP)
        _draw_text(canvas, left, _FOOTER_TOP - 5.5 * mm, f"签发：{issuer}", 8)
        _draw_text(canvas, _PAGE_W / 2, _FOOTER_TOP - 5.5 * mm, f"第 {number} 页 / 共 {total} 页", 9, align="center")
        canvas.restoreState()

    return decorate


def _pages(document: Mapping[str, Any]) -> bytes:
    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=_PAGE_H - _FRAME_TOP,
        bottomMargin=_FRAME_BOTTOM,
        title=TITLE,
        author=str(document.get("issuer") or ""),
        subject=str(document.get("job_id") or ""),
        creator=RENDERER,
        producer=RENDERER,
        invariant=1,
        pageCompression=1,
        lang="zh-CN",
        initialFontName=LATIN,
    )
    frame = Frame(_MARGIN_X, _FRAME_BOTTOM, _WIDTH, _FRAME_TOP - _FRAME_BOTTOM, leftPadding=0, rightPadding=0)
    doc.addPageTemplates([PageTemplate(id="summary", frames=[frame])])
    doc.build(_story(document), canvasmaker=_canvas_maker(_decorate(document)))
    return out.getvalue()


def render_summary(document: Mapping[str, Any], jws: str) -> bytes:
    """The signed summary as a PDF: ``document`` printed, ``jws`` (its signed form)
    attached as ``summary.jws``. The same arguments always give the same bytes.

    Raises:
        UnicodeEncodeError: ``jws`` is not ASCII (a compact JWS always is).
    """
    with _LOCK:
        pages = _pages(document)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pages), strict=True))
    attachment = writer.add_attachment(ATTACHMENT, jws.encode("ascii"))
    attachment.subtype = NameObject("/" + ATTACHMENT_MIME)
    attachment.description = TextStringObject("签名汇总 (signed batch summary, compact JWS)")
    attachment.associated_file_relationship = NameObject("/Source")
    signed = _pdf_date(document.get("finished_at"))
    moment = datetime.strptime(signed[2:16], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    attachment.creation_date = moment
    attachment.modification_date = moment
    filespec = attachment.pdf_object.indirect_reference
    if filespec is not None:
        writer.root_object[NameObject("/AF")] = ArrayObject([filespec])
    writer.add_metadata(
        {
            "/Title": TITLE,
            "/Author": str(document.get("issuer") or ""),
            "/Subject": str(document.get("job_id") or ""),
            "/Creator": RENDERER,
            "/Producer": RENDERER,
            "/CreationDate": signed,
            "/ModDate": signed,
        }
    )
    identifier = ByteStringObject(hashlib.sha256(jws.encode("ascii")).digest()[:16])
    writer._ID = ArrayObject([identifier, identifier])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def attached_summary(pdf: bytes, keyring: Keyring) -> dict[str, Any]:
    """The signed summary a summary PDF carries, once its signature verifies.

    Raises:
        VerificationError: no ``summary.jws`` attached, or its signature does not verify.
    """
    try:
        attached = PdfReader(io.BytesIO(pdf)).attachments.get(ATTACHMENT, [])
    except Exception as exc:  # noqa: BLE001 - pypdf's own errors: not a PDF it reads
        raise VerificationError(f"无法读取 PDF (cannot read the PDF: {exc})") from None
    if len(attached) != 1:
        raise VerificationError(f"PDF 未附签名汇总 (the PDF does not carry one {ATTACHMENT})")
    try:
        token = attached[0].decode("ascii")
    except UnicodeDecodeError:
        raise VerificationError("签名汇总不是 JWS (the attachment is not a compact JWS)") from None
    document: dict[str, Any] = verify(token, keyring, typ=TokenType.BATCH_SUMMARY)
    return document
