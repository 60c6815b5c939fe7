"""The signed summary of a batch job (协助核查情况统计表 · 汇总) as an A4 PDF page, set with the
printed report's fonts and layout (:mod:`gateway.reports.pdfkit`): the job, the counts of
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

import io
from collections.abc import Callable, Mapping
from typing import Any

from pypdf import PdfReader
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Spacer  # type: ignore[import-untyped]

from credit.profiles import profiles
from credit.regions import Region
from credit.signing import Keyring, TokenType, VerificationError, verify
from gateway.reports import pdfkit
from gateway.reports.pdfkit import (
    FOOTER_TOP,
    FRAME_BOTTOM,
    GREY_BG,
    LATIN,
    LOCK,
    MARGIN_X,
    MUTED,
    PAGE_H,
    PAGE_W,
    RULE,
    WIDTH,
    attach_signed,
    beijing_time,
    canvas_maker,
    draw_text,
    grid_table,
    or_dash,
    paragraph,
    pdf_date,
    styles,
)

ATTACHMENT = "summary.jws"
RENDERER = "jjj-batch-summary-pdf/1"
TITLE = "协助核查情况统计表（汇总）"
ATTACHMENT_MIME = pdfkit.ATTACHMENT_MIME

_HEADER_BOTTOM = PAGE_H - 26 * mm
_FRAME_TOP = PAGE_H - 30 * mm

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
        ("任务编号", or_dash(document.get("job_id"))),
        ("核查事由", or_dash(document.get("purpose"))),
        ("提交人", or_dash(document.get("requested_by"))),
        ("报告规则", profile.title if profile is not None else or_dash(document.get("profile"))),
        ("查询年限", f"近 {or_dash(document.get('years'))} 年"),
        ("提交时间", beijing_time(document.get("created_at"))),
        ("完成时间", beijing_time(document.get("finished_at"))),
        ("签发机构", or_dash(document.get("issuer"))),
    ]


def _story(document: Mapping[str, Any]) -> list[Any]:
    s = styles()
    counts = document.get("counts", {})
    regions = document.get("regions", {})
    facts = grid_table(
        [[paragraph(key, s.cell_head), paragraph(value, s.cell)] for key, value in _facts(document)],
        [30 * mm, WIDTH - 30 * mm],
        [("BACKGROUND", (1, 0), (1, 0), colors.white), ("BACKGROUND", (0, 0), (0, -1), GREY_BG)],
    )
    counted = grid_table(
        [[paragraph("行的类别", s.cell_head), paragraph("行数", s.cell_head)]]
        + [[paragraph(label, s.cell), paragraph(or_dash(counts.get(key, 0)), s.cell)] for key, label in COUNT_ROWS],
        [WIDTH - 40 * mm, 40 * mm],
    )
    by_region = grid_table(
        [[paragraph(h, s.cell_head) for h in ("地区", *(label for _, label in _REGION_COUNTS))]]
        + [
            [
                paragraph(region.name_zh, s.cell),
                *(paragraph(or_dash(regions[region.value].get(k, 0)), s.cell) for k, _ in _REGION_COUNTS),
            ]
            for region in Region
            if region.value in regions
        ],
        [30 * mm, *([(WIDTH - 30 * mm) / 3] * 3)],
    )
    return [
        paragraph(TITLE, s.title),
        paragraph("一、核查任务", s.heading),
        facts,
        paragraph("二、核查情况", s.heading),
        paragraph("名单的每一行计入一类，各类行数之和等于名单行数。", s.small),
        Spacer(1, 1.5 * mm),
        counted,
        paragraph("三、各地区查询情况（已核查的主体）", s.heading),
        by_region,
        paragraph("四、核验", s.heading),
        paragraph(
            f"本 PDF 附有签名汇总文件 {ATTACHMENT}（JWS，Ed25519 签名）。任何 JOSE 库均可用平台公布的公钥"
            "（/.well-known/jwks.json）核验其签名。签名汇总载明统计表 CSV 文件的 SHA-256 摘要："
            f"{or_dash(document.get('table_csv_sha256'))}，可据此核对下载的统计表未被改动。",
            s.body,
        ),
    ]


def _decorate(document: Mapping[str, Any]) -> Callable[[Any, int, int], None]:
    job_id = or_dash(document.get("job_id"))
    issuer = or_dash(document.get("issuer"))

    def decorate(canvas: Any, number: int, total: int) -> None:
        canvas.saveState()
        left, right, top = MARGIN_X, PAGE_W - MARGIN_X, PAGE_H - 10 * mm
        canvas.setFillColor(MUTED)
        draw_text(canvas, left, top - 4 * mm, TITLE, 9)
        draw_text(canvas, right, top - 4 * mm, f"任务编号：{job_id}", 9, align="right")
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(left, _HEADER_BOTTOM, right, _HEADER_BOTTOM)
        canvas.line(left, FOOTER_TOP, right, FOOTER_TOP)
        draw_text(canvas, left, FOOTER_TOP - 5.5 * mm, f"签发：{issuer}", 8)
        draw_text(canvas, PAGE_W / 2, FOOTER_TOP - 5.5 * mm, f"第 {number} 页 / 共 {total} 页", 9, align="center")
        canvas.restoreState()

    return decorate


def _pages(document: Mapping[str, Any]) -> bytes:
    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=PAGE_H - _FRAME_TOP,
        bottomMargin=FRAME_BOTTOM,
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
    frame = Frame(MARGIN_X, FRAME_BOTTOM, WIDTH, _FRAME_TOP - FRAME_BOTTOM, leftPadding=0, rightPadding=0)
    doc.addPageTemplates([PageTemplate(id="summary", frames=[frame])])
    doc.build(_story(document), canvasmaker=canvas_maker(_decorate(document)))
    return out.getvalue()


def render_summary(document: Mapping[str, Any], jws: str) -> bytes:
    """The signed summary as a PDF: ``document`` printed, ``jws`` (its signed form)
    attached as ``summary.jws``. The same arguments always give the same bytes.

    Raises:
        UnicodeEncodeError: ``jws`` is not ASCII (a compact JWS always is).
    """
    with LOCK:
        pages = _pages(document)
    return attach_signed(
        pages,
        jws=jws,
        filename=ATTACHMENT,
        description="签名汇总 (signed batch summary, compact JWS)",
        moment=pdf_date(document.get("finished_at")),
        metadata={
            "/Title": TITLE,
            "/Author": str(document.get("issuer") or ""),
            "/Subject": str(document.get("job_id") or ""),
            "/Creator": RENDERER,
            "/Producer": RENDERER,
        },
    )


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
