"""The printed report: an A4 PDF of a signed report document, and its verification.

:func:`render` sets a report document (see :mod:`credit.document`) on A4 pages in
Chinese, with the report number, the 核验码, a QR code to the verify page and
"第 x 页 / 共 y 页" on every page, a last page in plain words (how to verify, how to object,
what the report is for and until when) with the issuing organisation's seal, and attaches
the signed report itself as ``report.jws``. The pages are deterministic: the same
document, JWS and verify URL always give the same bytes. Given the organisation's seal it
then signs them (PAdES, :mod:`gateway.reports.seal`), as every report the gateway prints.

:func:`verify_pdf` proves a PDF genuine three times over: the organisation's PDF
signature must hold over the whole file, the attached JWS must verify against the
published keys, and the pages must be exactly what that signed document prints as (in
a person's own copy, with the full name it records for them: see :func:`render`). The
signature is checked first (it decodes nothing), then the JWS, so no page of a PDF
without a genuine report is ever decoded. Then the verified document is rendered again
and compared with the given pages by value: every page's decoded content stream and
everything the page draws with (fonts and their programs, images, annotations, page
boxes), and everything else the file holds (open actions, scripts, embedded files,
forms, the document information and XMP metadata, and revisions appended after the
gateway's). So a changed figure, an overlay, a swapped font, an added script or a
changed title is caught even though the attachment is intact.

An uploaded PDF is read within limits (:data:`MAX_PAGES` pages, :data:`MAX_DECODED_BYTES`
decoded from all its streams together, each decoded only as far as that allows), so a
small file that inflates to gigabytes costs no more than the limit. Errors::

    VerificationError        (credit.signing; an InvalidInput)  not genuine, with the reason
    └── PdfTooLarge          more pages or more decoded data than verification reads

The faces, styles, page geometry and the signed attachment are those of every PDF the
gateway prints (:mod:`gateway.reports.pdfkit`).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader, apply_configuration, get_configuration
from pypdf.errors import LimitReachedError
from pypdf.filters import ASCII85Decode, ASCIIHexDecode
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    ByteStringObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Spacer,
    Table,
    TableStyle,
)

from credit import labels, policy
from credit.document import FORMAT, cutoff_working_days, issuer_name, profile_name, valid_until
from credit.report import Verdict
from credit.signing import Keyring, VerificationError, verify
from gateway.reports import pdfkit
from gateway.reports.pdfkit import (
    FOOTER_TOP,
    FRAME_BOTTOM,
    GREY_BG,
    INK,
    LOCK,
    MARGIN_X,
    MUTED,
    PAGE_H,
    PAGE_W,
    RED,
    RULE,
    WIDTH,
    Styles,
    attach_signed,
    beijing_time,
    canvas_maker,
    draw_qr,
    draw_text,
    grid_table,
    or_dash,
    paragraph,
    pdf_date,
    register_fonts,
    styles,
)
from gateway.reports.seal import Seal, SealPlace, SealTrust, check_seal

ATTACHMENT = "report.jws"
VERIFY_URL_KEY = "/JJJVerifyURL"
HOLDER_NAME_KEY = "/JJJHolderName"
RENDERER = "jjj-credit-pdf/1"

# Set with every PDF the gateway prints (pdfkit), and still read from here.
ATTACHMENT_MIME = pdfkit.ATTACHMENT_MIME
FONT_DIR = pdfkit.FONT_DIR
CJK_FONT_FILE = pdfkit.CJK_FONT_FILE
LATIN_FONT_FILE = pdfkit.LATIN_FONT_FILE
CJK = pdfkit.CJK
LATIN = pdfkit.LATIN

_QR_BOX = 24 * mm  # the symbol with its 4-module quiet zone
_HEADER_BOTTOM = PAGE_H - 38 * mm
_FRAME_TOP = PAGE_H - 41 * mm

_RED_BG = colors.HexColor("#fde8ea")
_AMBER = colors.HexColor("#8a4b00")
_GREEN = colors.HexColor("#1e6b33")
_GREEN_BG = colors.HexColor("#e8f5ec")
_SEAL = colors.HexColor("#d8141e")

REGION_STATUS = labels.REGION_STATUS
RECORD_STATUS = labels.RECORD_STATUS
VERDICT = {**labels.VERDICT, Verdict.INCOMPLETE: labels.INCOMPLETE_NOT_A_CERTIFICATE}
INCOMPLETE_BANNER = VERDICT["incomplete"]


# --------------------------------------------------------------------------- values


def _region_names(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(code, 中文名) of the report's regions, in the document's order."""
    return [(str(r.get("region", "")), str(r.get("name") or r.get("region", ""))) for r in document.get("regions", [])]


# --------------------------------------------------------------------------- story


def _boxed(paragraphs: list[Any], border: Any, background: Any) -> Any:
    box = Table([[paragraphs]], colWidths=[WIDTH])
    box.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), LATIN, 8.5),
                ("BOX", (0, 0), (-1, -1), 1.5, border),
                ("BACKGROUND", (0, 0), (-1, -1), background),
                ("TOPPADDING", (0, 0), (-1, -1), 7),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return box


def _details(document: Mapping[str, Any], s: Styles) -> Any:
    subject = document.get("subject", {})
    window = document.get("window", {})
    kind = labels.SUBJECT_KIND.get(str(subject.get("kind")), or_dash(subject.get("kind")))
    id_name = labels.IDENTIFIER_NAME.get(str(subject.get("kind")), "主体标识")
    pairs: list[tuple[str, object]] = [
        ("报告编号", document.get("report_no")),
        (labels.VERIFICATION_CODE, document.get("verification_code")),
        # Reports that read the registers never print a bare dash for a name they lack.
        ("信用主体", subject.get("name") or (labels.subject_name_text(subject) if "register" in subject else None)),
        (id_name, subject.get("id")),
        ("主体类型", kind),
        ("查询区间", _period(document, s)),
        ("申请日期", window.get("application_date")),
        ("报告规范", profile_name(document)),
        ("签发机构", issuer_name(document)),
        ("签发时间", beijing_time(document.get("issued_at"))),
    ]
    rows = [
        [paragraph(key, s.cell_head), value if isinstance(value, list) else paragraph(or_dash(value), s.cell)]
        for key, value in pairs
    ]
    return _key_value_table(rows, 30 * mm)


def _key_value_table(rows: list[list[Any]], key_width: float) -> Table:
    """Rows of a label and its value, the labels on grey: how every fact block is set."""
    table = Table(rows, colWidths=[key_width, WIDTH - key_width])
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), LATIN, 8.5),
                ("GRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (0, -1), GREY_BG),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def _registration(document: Mapping[str, Any], s: Styles) -> list[Any]:
    """The 主体登记信息 block: the registration details the report certifies and their
    source, or in words why it shows none. Only documents that carry ``register`` (those
    issued since registers are read) have the block, so older ones print as they did."""
    subject = document.get("subject") or {}
    if "register" not in subject:
        return []
    register = subject.get("register")
    person = subject.get("kind") == "person"
    pairs: list[tuple[str, object]] = [
        ("姓名" if person else "名称", labels.subject_name_text(subject)),
        (labels.IDENTIFIER_NAME.get(str(subject.get("kind")), "主体标识"), subject.get("id")),
    ]
    if isinstance(register, Mapping):
        pairs += [(label, register.get(key) or labels.NOT_STATED) for key, label in labels.REGISTRATION_FIELDS[1:]]
        pairs.append((labels.REGISTRATION_SOURCE, labels.registration_source(register)))
    else:
        pairs.append((labels.REGISTRATION_NOTE, subject.get("register_note") or labels.NOT_STATED))
    rows = [[paragraph(key, s.cell_head), paragraph(or_dash(value), s.cell)] for key, value in pairs]
    table = _key_value_table(rows, 38 * mm)
    return [paragraph(labels.REGISTRATION_HEADING, s.heading), table]


def _period(document: Mapping[str, Any], s: Styles) -> list[Any]:
    """The period line, and why it ends before the application date."""
    window = document.get("window", {})
    period = (
        f"{or_dash(window.get('start'))} 至 {or_dash(window.get('cutoff'))}（近 {or_dash(window.get('years'))} 年）"
    )
    if window.get("calendar_exact") is False:
        period += "；节假日安排未公布，截止日按周一至周五推算"
    why = labels.cutoff_explained(cutoff_working_days(document))
    return [paragraph(period, s.cell), *([paragraph(why, s.small)] if why else [])]


def _regions(document: Mapping[str, Any], s: Styles) -> Any:
    rows: list[list[Any]] = [[paragraph(h, s.cell_head) for h in ("地区", "查询状态", "目录版本", "数据截至", "说明")]]
    extra: list[tuple[Any, ...]] = []
    for index, region in enumerate(document.get("regions", []), start=1):
        status = str(region.get("status"))
        answered = status == "answered"
        reason = region.get("reason")
        rows.append(
            [
                paragraph(region.get("name") or region.get("region"), s.cell),
                paragraph(REGION_STATUS.get(status, status), s.cell, color=None if answered else RED),
                paragraph(or_dash(region.get("catalogue_version")), s.cell),
                paragraph(beijing_time(region.get("data_as_of")) if region.get("data_as_of") else "—", s.cell),
                paragraph((_replica_note(region) or reason or "") if answered else or_dash(reason), s.cell),
            ]
        )
        if not answered:
            extra.append(("BACKGROUND", (0, index), (-1, index), _RED_BG))
    return grid_table(rows, [16 * mm, 18 * mm, 24 * mm, 54 * mm, WIDTH - 112 * mm], extra)


def _replica_note(region: Mapping[str, Any]) -> str:
    """For a region answered from another region's replica: who served it, as of when."""
    if region.get("source") != "replica":
        return ""
    served_by = or_dash(region.get("served_by_name") or region.get("served_by"))
    return f"由{served_by}节点副本提供，数据截至 {beijing_time(region.get('replica_as_of'))}"


def _record_text(number: int, record: Mapping[str, Any]) -> str:
    parts = [
        f"文号：{or_dash(record.get('decision_no'))}",
        f"决定机关：{or_dash(record.get('authority'))}",
        f"决定日期：{or_dash(record.get('decided_on'))}",
        f"内容：{or_dash(str(record.get('content') or '').rstrip('。；;. '))}",
    ]
    status = record.get("status")
    if status and status != "in_force":
        parts.append(f"状态：{RECORD_STATUS.get(str(status), str(status))}")
    if record.get("objection") == "open":
        parts.append("异议处理中")
    return f"（{number}）" + "；".join(parts)


def _cell(cell: Mapping[str, Any] | None, region_reason: object, s: Styles) -> tuple[list[Any], Any]:
    """The flowables of one result cell and its background (None for none)."""
    if cell is None:
        return [paragraph("该地区暂不可用（无应答）", s.cell, color=RED)], _RED_BG
    outcome = cell.get("outcome")
    excluded = cell.get("excluded")
    note = [paragraph(f"另有 {excluded} 条记录按规则不计入", s.small)] if excluded else []
    if outcome == "no_record":
        return [paragraph("无违法违规记录", s.cell), *note], None
    if outcome == "records":
        records = list(cell.get("records") or [])
        flow = [paragraph(f"有记录（{len(records)} 条）", s.cell, color=RED)]
        flow += [paragraph(_record_text(n, r), s.record) for n, r in enumerate(records, start=1)]
        return [*flow, *note], None
    if outcome == "not_covered":
        return [paragraph("该地区未覆盖", s.cell, color=MUTED)], None
    reason = cell.get("reason") or region_reason or "未说明原因"
    if outcome == "unavailable":
        return [paragraph(f"该地区暂不可用（{reason}）", s.cell, color=RED)], _RED_BG
    return [paragraph(f"结果无法识别（{or_dash(outcome)}）", s.cell, color=RED)], _RED_BG


def _results(document: Mapping[str, Any], s: Styles) -> Any:
    regions = _region_names(document)
    reasons = {str(r.get("region")): r.get("reason") for r in document.get("regions", [])}
    head = [paragraph("领域", s.cell_head), paragraph("类别", s.cell_head)] + [
        paragraph(name, s.cell_head) for _, name in regions
    ]
    rows: list[list[Any]] = [head]
    extra: list[tuple[Any, ...]] = []
    for row_index, line in enumerate(document.get("lines", []), start=1):
        by_region = {str(c.get("region")): c for c in line.get("cells", [])}
        row: list[Any] = [
            paragraph(line.get("domain_name") or line.get("domain"), s.cell),
            paragraph(line.get("scope_name"), s.cell),
        ]
        for column, (code, _) in enumerate(regions, start=2):
            flow, background = _cell(by_region.get(code), reasons.get(code), s)
            row.append(flow)
            if background is not None:
                extra.append(("BACKGROUND", (column, row_index), (column, row_index), background))
        rows.append(row)
    if len(rows) == 1:
        rows.append([paragraph("（本报告没有任何查询结果）", s.cell, color=RED), ""] + [""] * len(regions))
        extra.append(("SPAN", (0, 1), (-1, 1)))
    fixed = 30 * mm + 22 * mm
    each = (WIDTH - fixed) / max(1, len(regions))
    return grid_table(rows, [30 * mm, 22 * mm] + [each] * len(regions), extra)


def _any_unavailable(document: Mapping[str, Any]) -> bool:
    if any(r.get("status") != "answered" for r in document.get("regions", [])):
        return True
    return any(c.get("outcome") == "unavailable" for line in document.get("lines", []) for c in line.get("cells", []))


def _incomplete(document: Mapping[str, Any]) -> bool:
    """Whether the report must be marked incomplete: by its verdict, or by any region or
    cell that did not answer (a report with records may also have gaps)."""
    return document.get("verdict") not in ("clean", "has_records") or _any_unavailable(document)


def _verdict(document: Mapping[str, Any], s: Styles) -> Any:
    verdict = document.get("verdict")
    if verdict == "clean" and not _any_unavailable(document):
        return _boxed([paragraph(VERDICT["clean"], s.verdict, color=_GREEN)], _GREEN, _GREEN_BG)
    if verdict == "has_records":
        lines = [
            paragraph(VERDICT["has_records"], s.verdict, color=RED),
            paragraph("详见上表中“有记录”的各栏。", s.body),
        ]
        if _any_unavailable(document):
            lines.append(paragraph("另有部分地区或领域未能查询，本报告不完整。", s.body, color=RED))
        return _boxed(lines, RED, _RED_BG)
    if verdict in ("incomplete", "clean"):  # "clean" with a gap cannot be: never print it as clean
        return _boxed([paragraph(VERDICT["incomplete"], s.verdict, color=RED)], RED, _RED_BG)
    return _boxed(
        [paragraph(f"报告结论无法识别（{or_dash(verdict)}），不能作为无违法违规证明", s.verdict, color=RED)],
        RED,
        _RED_BG,
    )


# What a report may stand in for (seed 000: 适用场景), by the kind of subject.
USES = {
    "enterprise": "经营主体可用于申请上市、融资信贷、表彰奖励、招标投标、申请资金、项目支持等事项",
    "person": "自然人可用于评优评先、资格审查、出国就业留学等事项",
}


def _site(verify_url: str) -> str:
    """The verify page without the code (what a person types in)."""
    return verify_url.split("?", 1)[0]


def _closing(document: Mapping[str, Any], verify_url: str, s: Styles) -> list[Any]:
    """The last page, in plain words: how to verify, how to object, what the report is
    for and how long it stands, and why its period ends where it does."""
    code = or_dash(document.get("verification_code"))
    word = labels.VERIFICATION_CODE
    window = document.get("window", {})
    subject_kind = str(document.get("subject", {}).get("kind", ""))
    until = valid_until(document)
    contact = str(document.get("issuer_contact") or "")
    verify = [
        f"扫描每页右上角的二维码，或在浏览器中打开报告核验页 {_site(verify_url)}，输入{word} {code}，"
        "即可查看本报告是否由签发机构出具、当前是否有效（有效、已更新或已撤销）及报告摘要。",
        "也可在报告核验页上传本 PDF 文件：系统核对签发机构的电子签名，并核对本文件所印内容与签发时的报告数据完全一致。",
        "用 PDF 阅读器打开本文件，可在签名面板查看签发机构的电子签名；文件签名后如被改动，阅读器会提示签名无效。",
        f"打印件、复印件或截图无法核对电子签名，请以{word}或二维码核验。",
    ]
    objection = [
        "对报告所列记录有异议的，信用主体可登录本平台，在报告页就该条记录提出异议或信用修复申请，"
        "由作出该记录的决定机关核查处理（谁提供谁负责）。",
        "记录经更正、撤销或信用修复后，可重新申请报告；此前出具的报告在核验时显示为“已更新”。",
    ]
    if contact:
        objection.append(f"签发机构联系方式：{contact}")
    days = cutoff_working_days(document)
    period = f"{or_dash(window.get('start'))} 至 {or_dash(window.get('cutoff'))}"
    use = [
        f"本报告依据《{profile_name(document)}》规则出具，仅反映信用主体在查询区间（{period}）内、"
        "上表所列地区和领域的违法违规记录情况，仅供代替相应的无违法违规证明使用；法律法规另有规定的除外。",
        *([f"{USES[subject_kind]}。"] if subject_kind in USES else []),
        (
            f"本报告反映出具当日的情况，有效期至 {until.isoformat()}；有效期内记录如有变化，以核验结果为准。"
            if until is not None
            else "本报告反映出具当日的情况，以核验结果为准。"
        ),
        *(
            [labels.cutoff_explained(days) + f"本报告申请日为 {or_dash(window.get('application_date'))}。"]
            if days
            else []
        ),
    ]

    def numbered(items: list[str]) -> list[Any]:
        return [paragraph(f"{i}. {item}", s.body) for i, item in enumerate(items, start=1)]

    return [
        paragraph("五、如何核验本报告", s.heading),
        *numbered(verify),
        paragraph("六、异议与信用修复", s.heading),
        *numbered(objection),
        paragraph("七、报告用途与有效期", s.heading),
        *numbered(use),
    ]


class _IssuerBlock(Flowable):  # type: ignore[misc]
    """The sign-off (落款) at the end of the report: the issuing organisation and the
    issue time, its round seal over them, and beside it the place of the organisation's
    signature field, recorded in ``places`` for the signing step."""

    HEIGHT = 46 * mm
    SEAL_RADIUS = 20 * mm
    FIELD = (84 * mm, 24 * mm)

    def __init__(self, organisation: str, issued: str, places: list[SealPlace]) -> None:
        super().__init__()
        self.organisation = organisation
        self.issued = issued
        self.places = places

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self.width = available_width
        return available_width, self.HEIGHT

    def draw(self) -> None:
        canvas = self.canv
        right = self.width
        canvas.setFillColor(INK)
        draw_text(canvas, right, 27 * mm, f"签发机构：{self.organisation}", 10.5, align="right")
        draw_text(canvas, right, 19 * mm, f"签发时间：{self.issued}", 10.5, align="right")
        _draw_seal(canvas, right - 36 * mm, 23 * mm, self.SEAL_RADIUS, self.organisation)
        field_w, field_h = self.FIELD
        bottom = (self.HEIGHT - field_h) / 2
        x, y = canvas.absolutePosition(0, bottom)
        page = canvas.page_index() if hasattr(canvas, "page_index") else 0
        self.places.append(SealPlace(page, (float(x), float(y), float(x + field_w), float(y + field_h))))


def _story(document: Mapping[str, Any], verify_url: str, places: list[SealPlace]) -> list[Any]:
    s = styles()
    story: list[Any] = [paragraph(document.get("title") or "公共信用报告", s.title)]
    if _incomplete(document):
        story += [_boxed([paragraph(INCOMPLETE_BANNER, s.banner)], RED, _RED_BG), Spacer(1, 2 * mm)]
    story += _registration(document, s)
    story += [
        paragraph("一、基本信息", s.heading),
        _details(document, s),
        paragraph("二、各地区查询情况", s.heading),
        _regions(document, s),
        paragraph("三、查询结果", s.heading),
        paragraph(
            "每一领域一行，每一地区一栏：无违法违规记录、有记录（附文号、决定机关、日期、内容）、"
            "该地区未覆盖（该地区目录不含此领域）或该地区暂不可用（附原因）。",
            s.small,
        ),
        Spacer(1, 1.5 * mm),
        _results(document, s),
        KeepTogether([paragraph("四、结论", s.heading), _verdict(document, s)]),
    ]
    notes = [n for n in document.get("notes", []) if n]
    if notes:
        story.append(paragraph("说明", s.heading))
        story += [paragraph(f"{i}. {note}", s.body) for i, note in enumerate(notes, start=1)]
    # The last page explains the report in plain words and carries the sign-off.
    story.append(PageBreak())
    story += _closing(document, verify_url, s)
    story.append(Spacer(1, 4 * mm))
    story.append(
        _IssuerBlock(issuer_name(document), beijing_time(document.get("issued_at")), places),
    )
    return story


# --------------------------------------------------------------------------- the seal


def _draw_star(canvas: Any, cx: float, cy: float, outer: float) -> None:
    inner = outer * 0.382
    path = canvas.beginPath()
    for index in range(10):
        radius = outer if index % 2 == 0 else inner
        angle = math.radians(90 + index * 36)
        x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        if index == 0:
            path.moveTo(x, y)
        else:
            path.lineTo(x, y)
    path.close()
    canvas.drawPath(path, stroke=0, fill=1)


def _draw_seal(canvas: Any, cx: float, cy: float, radius: float, organisation: str) -> None:
    """A round red seal: the organisation's name around the upper rim, a star in the
    middle, and 电子印章 below it, so that no one takes it for an inked one."""
    canvas.saveState()
    canvas.setStrokeColor(_SEAL)
    canvas.setFillColor(_SEAL)
    canvas.setStrokeAlpha(0.9)
    canvas.setFillAlpha(0.9)
    canvas.setLineWidth(1.6 * mm * radius / (20 * mm))
    canvas.circle(cx, cy, radius - 0.8 * mm, stroke=1, fill=0)
    _draw_star(canvas, cx, cy + 0.5 * mm, radius * 0.3)
    draw_text(canvas, cx, cy - radius * 0.55, "电子印章", radius * 0.2, align="center")
    # The name along the rim, from lower left over the top to lower right, each
    # character upright towards the centre.
    chars = list(organisation) or ["—"]
    size = min(radius * 0.27, radius * 5.2 / max(1, len(chars)))
    rim = radius - 1.6 * mm - size * 0.95
    step = min(math.radians(24), math.radians(250) / max(1, len(chars) - 1)) if len(chars) > 1 else 0.0
    first = math.pi / 2 + step * (len(chars) - 1) / 2
    for index, char in enumerate(chars):
        angle = first - index * step
        canvas.saveState()
        canvas.translate(cx + rim * math.cos(angle), cy + rim * math.sin(angle))
        canvas.rotate(math.degrees(angle) - 90)
        draw_text(canvas, 0, 0, char, size, align="center")
        canvas.restoreState()
    canvas.restoreState()


def _signature_face(organisation: str, width: float, height: float) -> bytes:
    """The signature field's appearance: what the field says beside the seal (a one-page
    PDF of the field's size)."""
    out = io.BytesIO()
    with LOCK:
        register_fonts()
        canvas = Canvas(out, pagesize=(width, height), invariant=1, pageCompression=1)
        canvas.setStrokeColor(_SEAL)
        canvas.setLineWidth(0.8)
        canvas.roundRect(0.5, 0.5, width - 1, height - 1, 2 * mm, stroke=1, fill=0)
        canvas.setFillColor(_SEAL)
        draw_text(canvas, 3 * mm, height - 7 * mm, "电子签名", 11)
        canvas.setFillColor(INK)
        draw_text(canvas, 3 * mm, height - 13 * mm, f"签名机构：{organisation}", 9)
        canvas.setFillColor(MUTED)
        draw_text(canvas, 3 * mm, height - 18 * mm, "在 PDF 阅读器的签名面板可查看签名；", 8)
        draw_text(canvas, 3 * mm, height - 22 * mm, "文件签名后如被改动，签名即显示无效。", 8)
        canvas.showPage()
        canvas.save()
    return out.getvalue()


# --------------------------------------------------------------------------- pages


def _decorate(document: Mapping[str, Any], verify_url: str) -> Callable[[Any, int, int], None]:
    title = str(document.get("title") or "公共信用报告")
    report_no = or_dash(document.get("report_no"))
    code = or_dash(document.get("verification_code"))
    issuer = issuer_name(document)
    incomplete = _incomplete(document)

    def decorate(canvas: Any, number: int, total: int) -> None:
        canvas.saveState()
        left = MARGIN_X
        right = PAGE_W - MARGIN_X
        top = PAGE_H - 10 * mm
        canvas.setFillColor(MUTED)
        draw_text(canvas, left, top - 4 * mm, title, 9)
        canvas.setFillColor(INK)
        draw_text(canvas, left, top - 10 * mm, f"报告编号：{report_no}", 10)
        draw_text(canvas, left, top - 16 * mm, f"{labels.VERIFICATION_CODE}：{code}", 10)
        if incomplete:
            canvas.setFillColor(RED)
            draw_text(canvas, left, top - 22.5 * mm, "报告不完整 · 不能作为无违法违规证明", 10)
        draw_qr(canvas, verify_url, right - _QR_BOX, top - _QR_BOX, _QR_BOX)
        canvas.setFillColor(MUTED)
        draw_text(canvas, right - _QR_BOX - 2 * mm, top - 22.5 * mm, "扫码核验", 7.5, align="right")
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(left, _HEADER_BOTTOM, right, _HEADER_BOTTOM)
        canvas.line(left, FOOTER_TOP, right, FOOTER_TOP)
        draw_text(canvas, left, FOOTER_TOP - 5.5 * mm, f"签发：{issuer}", 8)
        canvas.setFillColor(INK)
        draw_text(canvas, PAGE_W / 2, FOOTER_TOP - 5.5 * mm, f"第 {number} 页 / 共 {total} 页", 9, align="center")
        canvas.setFillColor(MUTED)
        draw_text(canvas, right, FOOTER_TOP - 5.5 * mm, report_no, 8, align="right")
        canvas.restoreState()

    return decorate


def _pages(document: Mapping[str, Any], verify_url: str) -> tuple[bytes, SealPlace]:
    """The report's pages, and where its signature field goes."""
    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=PAGE_H - _FRAME_TOP,
        bottomMargin=FRAME_BOTTOM,
        title=str(document.get("title") or ""),
        author=issuer_name(document),
        subject=str(document.get("report_no") or ""),
        creator=RENDERER,
        producer=RENDERER,
        invariant=1,
        pageCompression=1,
        lang="zh-CN",
        initialFontName=LATIN,
    )
    frame = Frame(MARGIN_X, FRAME_BOTTOM, WIDTH, _FRAME_TOP - FRAME_BOTTOM, leftPadding=0, rightPadding=0, id="body")
    doc.addPageTemplates([PageTemplate(id="report", frames=[frame])])
    places: list[SealPlace] = []
    doc.build(_story(document, verify_url, places), canvasmaker=canvas_maker(_decorate(document, verify_url)))
    return out.getvalue(), places[-1]


def _holder_name_refused(document: Mapping[str, Any], holder_name: str) -> str:
    """Why ``holder_name`` may not stand for the subject's name in ``document`` ("" if it may)."""
    subject = document.get("subject") or {}
    if subject.get("kind") != "person":
        return "only a person's own copy prints a full name"
    if not policy.full_name_fits(holder_name, str(subject.get("name") or "")):
        return "the full name is not the subject's name as the records publish it"
    return ""


def _as_printed_for(document: Mapping[str, Any], holder_name: str) -> Mapping[str, Any]:
    """The document as its pages show it: with the holder's full name for the subject's
    name in their own copy (the signed document itself is left as it is)."""
    if not holder_name:
        return document
    return {**document, "subject": {**document["subject"], "name": holder_name}}


def render(
    document: Mapping[str, Any], jws: str, *, verify_url: str, seal: Seal | None = None, holder_name: str = ""
) -> bytes:
    """The printed report: an A4 PDF of ``document`` with ``jws`` attached as ``report.jws``,
    signed with ``seal``.

    ``document`` is the signed document (what :func:`credit.signing.verify` returns for
    ``jws``); ``verify_url`` is what the QR code on every page opens, typically the
    verify page with the verification code in it. It is also recorded in the document
    information (``/JJJVerifyURL``) so that :func:`verify_pdf` can print the same pages
    again.

    ``holder_name`` is given for the copy a person downloads of a report about themselves
    (:func:`credit.policy.sees_own_full_name`): their full name, printed wherever the
    pages name the subject instead of the name the records publish masked (李*华), which
    the signed document keeps. It is recorded in the document information too
    (``/JJJHolderName``), so that :func:`verify_pdf` prints the same pages again; the
    organisation's signature covers it, the JWS does not. Everyone else's copy leaves it
    out and prints the document as signed.

    Without ``seal``: the pages alone, the same bytes for the same arguments (what a
    verifier renders to compare with). With it: those pages and one more revision, the
    issuing organisation's signature with its field beside the seal on the last page
    (see :mod:`gateway.reports.seal`); only that is a report :func:`verify_pdf` accepts.

    Raises:
        UnicodeEncodeError: ``jws`` is not ASCII (a compact JWS always is).
        ValueError: ``holder_name`` for a subject that is not a person, or one that does
            not fit the published name (:func:`credit.policy.full_name_fits`).
        FailedPrecondition: the seal could not sign.
    """
    if holder_name:
        refused = _holder_name_refused(document, holder_name)
        if refused:
            raise ValueError(refused)
    with LOCK:
        pages, place = _pages(_as_printed_for(document, holder_name), verify_url)
    printed = attach_signed(
        pages,
        jws=jws,
        filename=ATTACHMENT,
        description="签名报告 (signed report, compact JWS)",
        moment=pdf_date(document.get("issued_at")),
        metadata={
            "/Title": str(document.get("title") or ""),
            "/Author": issuer_name(document),
            "/Subject": str(document.get("report_no") or ""),
            "/Creator": RENDERER,
            "/Producer": RENDERER,
            VERIFY_URL_KEY: verify_url,
            **({HOLDER_NAME_KEY: holder_name} if holder_name else {}),
        },
    )
    if seal is None:
        return printed
    face = _signature_face(seal.organisation, place.box[2] - place.box[0], place.box[3] - place.box[1])
    return seal.sign(printed, place, face)


# --------------------------------------------------------------------------- verify


MAX_PAGES = 200
"""The most pages an uploaded PDF may have. A report prints about five records a page
(150 records: 29 pages), so this is a report of some thousand records."""
MAX_DECODED_BYTES = 16 * 1024 * 1024
"""The most bytes the streams of an uploaded PDF may decode to, all of them together. A
200-page report decodes to about 4 MiB, most of it the two embedded font subsets."""


class PdfTooLarge(VerificationError):
    """A PDF beyond what verification reads: more than :data:`MAX_PAGES` pages, or
    streams that decode to more than :data:`MAX_DECODED_BYTES`. Refused as soon as the
    limit is passed, before the excess is decoded."""

    title = "PDF too large to verify"


_TOO_MUCH_DATA = (
    f"PDF 解压后的数据超过上限 {MAX_DECODED_BYTES // 2**20} MiB (the PDF's streams decode to more than "
    f"{MAX_DECODED_BYTES // 2**20} MiB, the most that is verified)"
)


def _too_many_pages(count: str) -> PdfTooLarge:
    return PdfTooLarge(f"PDF 页数超过上限 {MAX_PAGES} 页 (the PDF has {count} pages; at most {MAX_PAGES} are verified)")


# What pypdf decodes by itself (object and cross-reference streams, while parsing) stays
# within the same bound; a corrupt stream is refused rather than "recovered" byte by byte;
# no external decoder runs on an upload.
_OUTPUT_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "jbig2_maximum_output_length",
    "brotli_maximum_output_length",
    "array_based_stream_maximum_output_length",
    "image_maximum_buffer_size",
)
_UNTRUSTED: dict[str, Any] = {
    **dict.fromkeys(_OUTPUT_LIMITS, MAX_DECODED_BYTES),
    "stream_decoding_work_maximum_length": 4 * MAX_DECODED_BYTES,
    "zlib_maximum_recovery_input_length": 0,
    "page_tree_maximum_entries": 4 * MAX_PAGES,
    "jbig2dec_binary": None,
}

_FLATE = frozenset({"/FlateDecode", "/Fl"})
_ARMOUR: dict[str, Callable[[bytes], bytes]] = {
    "/ASCII85Decode": ASCII85Decode.decode,
    "/A85": ASCII85Decode.decode,
    "/ASCIIHexDecode": ASCIIHexDecode.decode,
    "/AHx": ASCIIHexDecode.decode,
}
_CHUNK = 1024 * 1024
_ENCODING_KEYS = frozenset({"/Length", "/Filter", "/DecodeParms", "/DL"})
_BACK_REFERENCES = frozenset({"/Parent", "/P"})
_MAX_DEPTH = 64

_MISMATCH = "PDF 可见内容与签名报告不符 (the printed content does not match the signed report"
_ADDED_ACTION = "PDF 含有附加的脚本或动作 (the PDF holds an added action or script: {})"
_ADDED_FILE = "PDF 含有附加或改动的嵌入文件 (the PDF holds an added or changed embedded file: {})"
_ADDED_FORM = "PDF 含有附加的表单 (the PDF holds an added form: {})"
_CHANGED_XMP = "PDF 的 XMP 元数据与签发时不同 (the PDF's XMP metadata differs from what the gateway wrote: {})"
_CHANGED_INFO = "PDF 文档信息与签发时不同 (the document information differs from what the gateway wrote: {})"
_CHANGED_STRUCTURE = "PDF 文档结构与签发时不同 (the document structure differs from what the gateway rendered: {})"
_UPDATED = "PDF 在签发后被增量修改 (the PDF holds an incremental update appended after the gateway's revision: {})"
_CATALOG_FINDINGS = {
    "/OpenAction": _ADDED_ACTION,
    "/AA": _ADDED_ACTION,
    "/AcroForm": _ADDED_FORM,
    "/AF": _ADDED_FILE,
    "/Metadata": _CHANGED_XMP,
}
_NAMES_FINDINGS = {"/JavaScript": _ADDED_ACTION, "/EmbeddedFiles": _ADDED_FILE}

_XREF_STREAM = re.compile(rb"/Type\s*/(?:XRef|ObjStm)(?![A-Za-z])")
_XREF_SECTION = re.compile(rb"(?<![A-Za-z])xref\s+\d+\s+\d+|/Type\s*/XRef(?![A-Za-z])")
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_PREV = re.compile(rb"/Prev(?![A-Za-z])")


class _Decoder:
    """Decodes the streams of one PDF, all of them together within ``limit`` bytes.

    Each stream is decoded only as far as the bytes left allow, so a stream that would
    inflate to gigabytes costs the limit and no more. ``limit=None`` is for the trusted
    rendering an upload is compared with.
    """

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._used = 0

    def data(self, stream: StreamObject) -> bytes:
        """The decoded data of ``stream``.

        Raises:
            PdfTooLarge: the data takes the PDF past its limit.
            VerificationError: a stream that cannot be decoded.
        """
        if self._limit is None:
            return bytes(stream.get_data())
        remaining = self._limit - self._used
        filters = _plain_filters(stream)
        data = _decode(stream, remaining) if filters is None else _unwrap(stream._data, filters, remaining)
        self._used += len(data)
        if self._used > self._limit:
            raise PdfTooLarge(_TOO_MUCH_DATA)
        return data


def _resolved(obj: Any) -> Any:
    return None if obj is None else obj.get_object()


def _plain_filters(stream: StreamObject) -> list[str] | None:
    """The filters of ``stream`` when each is ASCII armour or Flate without a predictor,
    as in every report (ReportLab writes ASCII85 over Flate, pypdf Flate); else None."""
    filters, parms = _resolved(stream.get("/Filter")), _resolved(stream.get("/DecodeParms"))
    names = list(filters) if isinstance(filters, ArrayObject) else [] if filters is None else [filters]
    each = list(parms) if isinstance(parms, ArrayObject) else [parms] * len(names)
    plain = []
    for index, name in enumerate(_resolved(name) for name in names):
        parm = _resolved(each[index]) if index < len(each) else None
        no_predictor = parm is None or isinstance(parm, NullObject)
        no_predictor = no_predictor or (isinstance(parm, DictionaryObject) and parm.get("/Predictor", 1) == 1)
        if not isinstance(name, NameObject) or not (name in _ARMOUR or (name in _FLATE and no_predictor)):
            return None
        plain.append(str(name))
    return plain


def _unwrap(data: bytes, filters: list[str], remaining: int) -> bytes:
    for name in filters:
        # ASCII armour shrinks what it decodes (ASCII85's "z" aside: four bytes for one).
        data = _inflate(data, remaining) if name in _FLATE else _ARMOUR[name](data)
    return data


def _inflate(data: bytes, remaining: int) -> bytes:
    """``data`` inflated, refused as soon as it passes ``remaining`` bytes: zlib stops at
    max_length, so a bomb costs the bytes left and one chunk, never its full size."""
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            part = inflater.decompress(data, _CHUNK)
        except zlib.error as exc:
            raise VerificationError(
                f"不是有效的 PDF 文件 (not a readable PDF: a stream does not inflate: {exc})"
            ) from exc
        size += len(part)
        if size > remaining:
            raise PdfTooLarge(_TOO_MUCH_DATA)
        parts.append(part)
        data = inflater.unconsumed_tail
        if inflater.eof or (not data and len(part) < _CHUNK):
            return b"".join(parts)


def _decode(stream: StreamObject, remaining: int) -> bytes:
    # Other encodings (never in a report, but legal in a PDF): pypdf's decoders, each
    # held to the bytes left. A corrupt stream it cannot recover within them also ends
    # here, as refused.
    limits = get_configuration().with_overwrites(**dict.fromkeys(_OUTPUT_LIMITS, remaining + 1))
    try:
        with apply_configuration(limits):
            return bytes(stream.get_data())
    except LimitReachedError as exc:
        raise PdfTooLarge(_TOO_MUCH_DATA) from exc


class _Digests:
    """SHA-256 digests of PDF objects, by value: indirect objects resolved, streams decoded.

    Encoding details that do not change what is drawn (stream filters and lengths,
    object numbers) do not enter the digest, so a file saved again by another tool
    still compares equal; back-references (``/Parent``, ``/P``) are left out. Streams
    are decoded through ``decoder``, within its limit.
    """

    def __init__(self, decoder: _Decoder) -> None:
        self._decoder = decoder
        self._done: dict[tuple[int, int], bytes] = {}
        self._open: set[tuple[int, int]] = set()

    def of(self, obj: Any, depth: int = 0, skip: frozenset[str] = _BACK_REFERENCES) -> bytes:
        if depth > _MAX_DEPTH:
            raise VerificationError("PDF 结构无法解析 (the PDF nests objects too deeply)")
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in self._done:
                return self._done[key]
            if key in self._open:
                return hashlib.sha256(b"cycle").digest()
            self._open.add(key)
            try:
                digest = self.of(obj.get_object(), depth + 1)
            finally:
                self._open.discard(key)
            self._done[key] = digest
            return digest
        h = hashlib.sha256()
        if isinstance(obj, StreamObject):
            h.update(b"stream")
            for name in sorted(k for k in obj if k not in _ENCODING_KEYS and k not in skip):
                h.update(self._name(name) + self.of(obj[name], depth + 1))
            h.update(hashlib.sha256(self._decoder.data(obj)).digest())
        elif isinstance(obj, DictionaryObject):
            h.update(b"dict")
            for name in sorted(k for k in obj if k not in skip):
                h.update(self._name(name) + self.of(obj[name], depth + 1))
        elif isinstance(obj, ArrayObject):
            h.update(b"array")
            for item in obj:
                h.update(self.of(item, depth + 1))
        elif isinstance(obj, NameObject):
            h.update(self._name(str(obj)))
        elif isinstance(obj, TextStringObject | ByteStringObject):
            raw = obj.original_bytes if isinstance(obj, TextStringObject) else bytes(obj)
            h.update(b"string%d:" % len(raw) + raw)
        elif isinstance(obj, BooleanObject | NullObject | NumberObject | FloatObject):
            h.update(f"{type(obj).__name__}:{obj!r}".encode())
        else:
            raise VerificationError(f"PDF 结构无法解析 (unexpected PDF object {type(obj).__name__})")
        return h.digest()

    @staticmethod
    def _name(name: str) -> bytes:
        raw = name.encode("utf-8", "surrogatepass")
        return b"name%d:" % len(raw) + raw


@dataclass(frozen=True, slots=True)
class _Pdf:
    """A PDF being verified, or the rendering it is compared with: its bytes, its reader,
    and the decoder every stream of it goes through."""

    data: bytes
    reader: PdfReader
    decoder: _Decoder
    digests: _Digests

    @classmethod
    def read(cls, data: bytes, *, limit: int | None) -> _Pdf:
        decoder = _Decoder(limit)
        return cls(data, PdfReader(io.BytesIO(data), strict=True), decoder, _Digests(decoder))

    def digest(self, obj: Any) -> bytes | None:
        """The digest of ``obj`` by value; None for an absent entry."""
        return None if obj is None else self.digests.of(obj)

    def differing(self, mine: Any, other: _Pdf, theirs: Any, *, skip: frozenset[str] = frozenset()) -> list[str]:
        """The keys of two dictionaries whose values differ (absent being a value too)."""
        keys = sorted((set(mine) | set(theirs)) - skip)
        return [key for key in keys if self.digest(mine.get(key)) != other.digest(theirs.get(key))]


@contextmanager
def _reading() -> Iterator[None]:
    """Any failure to read untrusted bytes, as a :class:`VerificationError`."""
    try:
        yield
    except VerificationError:
        raise
    except LimitReachedError as exc:
        raise PdfTooLarge(f"PDF 超出核验限制 (the PDF is beyond what is verified: {exc})") from exc
    except Exception as exc:  # any failure to parse untrusted bytes means: not a readable PDF
        raise VerificationError(f"不是有效的 PDF 文件 (not a readable PDF: {type(exc).__name__}: {exc})") from exc


def _embedded_jws(pdf: _Pdf) -> str:
    """The attached ``report.jws``, decoded within the PDF's limit."""
    found = [entry for entry in pdf.reader.attachment_list if entry.name == ATTACHMENT]
    if not found:
        raise VerificationError(f"PDF 中没有签名报告 (the PDF has no attached {ATTACHMENT})")
    if len(found) != 1:
        raise VerificationError(f"PDF 中有多个签名报告 (the PDF has {len(found)} attachments named {ATTACHMENT})")
    files = _resolved(found[0].pdf_object.get("/EF"))
    stream = None
    if isinstance(files, DictionaryObject):
        stream = _resolved(files.get("/UF", files.get("/F")))
    if not isinstance(stream, StreamObject):
        raise VerificationError(f"签名报告格式错误 ({ATTACHMENT} is not an embedded file stream)")
    try:
        return pdf.decoder.data(stream).decode("ascii")
    except UnicodeDecodeError:
        raise VerificationError(f"签名报告格式错误 ({ATTACHMENT} is not a compact JWS: not ASCII)") from None


def _recorded_verify_url(pdf: _Pdf) -> str | None:
    info = pdf.reader.metadata
    url = info.get(VERIFY_URL_KEY) if info is not None else None
    return None if url is None else str(_resolved(url))


def _recorded_holder_name(pdf: _Pdf) -> str:
    """The full name a person's own copy prints for them ("" for every other copy)."""
    info = pdf.reader.metadata
    name = info.get(HOLDER_NAME_KEY) if info is not None else None
    return "" if name is None else str(_resolved(name))


def _page_count(pdf: _Pdf) -> int:
    """The number of pages, refused past :data:`MAX_PAGES` (the page tree is walked, no
    page is decoded)."""
    try:
        count = len(pdf.reader.pages)
    except LimitReachedError as exc:
        raise _too_many_pages(f"more than {MAX_PAGES}") from exc
    if count > MAX_PAGES:
        raise _too_many_pages(str(count))
    return count


def _page_content(page: Any, decoder: _Decoder) -> bytes:
    """A page's decoded content streams, one after the other."""
    contents = _resolved(page.get("/Contents"))
    if contents is None:
        return b""
    if isinstance(contents, ArrayObject):
        return b"\n".join(decoder.data(part.get_object()) for part in contents)
    if isinstance(contents, StreamObject):
        return decoder.data(contents)
    raise VerificationError("PDF 结构无法解析 (a page's /Contents is neither a stream nor an array)")


def _revisions(data: bytes) -> tuple[int, int]:
    """How many revisions the bytes hold, counted two ways: end-of-file markers and
    cross-reference sections (tables and streams)."""
    return data.count(b"%%EOF"), len(_XREF_SECTION.findall(data))


def _points_back(data: bytes) -> bool:
    """Whether the last cross-reference section names an earlier one (``/Prev``)."""
    at = data.rfind(b"startxref")
    found = _STARTXREF.match(data, at) if at >= 0 else None
    if found is None:
        return False
    section = data[int(found.group(1)) : at]
    return _PREV.search(section.split(b"stream", 1)[0]) is not None


def _check_revisions(given: _Pdf, expected: _Pdf) -> None:
    """Nothing appended to the pages' revision (the signature's, after it, is checked by
    :func:`gateway.reports.seal.check_seal`).

    The rendering sets how many revisions the pages may hold, and a revision beyond them
    (an incremental update: another ``%%EOF``, another cross-reference section, a
    ``/Prev`` to an earlier one) was appended by someone else, whatever it changes.
    """
    (markers, sections), (own_markers, own_sections) = _revisions(given.data), _revisions(expected.data)
    if markers > own_markers or sections > own_sections:
        raise VerificationError(
            _UPDATED.format(f"{markers} end-of-file markers and {sections} cross-reference sections, not {own_markers}")
        )
    if _points_back(given.data) and not _points_back(expected.data):
        raise VerificationError(_UPDATED.format("the trailer points back to an earlier one (/Prev)"))


def _check_document(given: _Pdf, expected: _Pdf) -> None:
    """The catalog holds what the rendering's holds and nothing more, by value: no added
    action, script, form, embedded file, XMP metadata or anything else. (The pages are
    compared page by page.)"""
    mine, theirs = given.reader.root_object, expected.reader.root_object
    for key in given.differing(mine, expected, theirs, skip=frozenset({"/Pages"})):
        names, own_names = _resolved(mine.get(key)), _resolved(theirs.get(key))
        if key == "/Names" and isinstance(names, DictionaryObject) and isinstance(own_names, DictionaryObject):
            raise VerificationError(_names_finding(given, names, expected, own_names))
        raise VerificationError(_CATALOG_FINDINGS.get(key, _CHANGED_STRUCTURE).format(key))


def _names_finding(given: _Pdf, names: DictionaryObject, expected: _Pdf, own_names: DictionaryObject) -> str:
    """What differs in the catalog's name dictionary: scripts, embedded files, or else."""
    for key in given.differing(names, expected, own_names):
        if key == "/EmbeddedFiles":
            own = {entry.name for entry in expected.reader.attachment_list}
            added = sorted({entry.name for entry in given.reader.attachment_list} - own)
            return _ADDED_FILE.format(", ".join(added) or "/Names /EmbeddedFiles")
        return _NAMES_FINDINGS.get(key, _CHANGED_STRUCTURE).format(f"/Names {key}")
    return _CHANGED_STRUCTURE.format("/Names")


def _check_pages(given: _Pdf, expected: _Pdf) -> None:
    """Every page draws exactly what the rendering's does: its actions, annotations,
    decoded content streams, and everything it draws with (fonts and font programs,
    images, page boxes)."""
    pages = zip(given.reader.pages, expected.reader.pages, strict=True)
    for number, (page, own) in enumerate(pages, start=1):
        if given.digest(page.get("/AA")) != expected.digest(own.get("/AA")):
            raise VerificationError(_ADDED_ACTION.format(f"/AA of page {number}"))
        if given.digest(page.get("/Annots")) != expected.digest(own.get("/Annots")):
            raise VerificationError(
                f"PDF 可见内容与签名报告不符：第 {number} 页含有附加的注释 (the printed content does not match the"
                f" signed report: page {number} holds annotations the gateway did not add)"
            )
        if _page_content(page, given.decoder) != _page_content(own, expected.decoder):
            raise VerificationError(f"{_MISMATCH}: the text or drawing of page {number} differs)")
        skip = _BACK_REFERENCES | {"/Contents"}
        if given.digests.of(page, skip=skip) != expected.digests.of(own, skip=skip):
            raise VerificationError(f"{_MISMATCH}: the fonts, images or annotations of page {number} differ)")


def _check_info(given: _Pdf, expected: _Pdf) -> None:
    """The document information (Title, Author, …) is what the gateway wrote."""
    mine, theirs = _information(given), _information(expected)
    if VERIFY_URL_KEY not in mine:
        # Recording the verify URL is optional: without it the verifier names the URL,
        # and the QR codes on the pages prove it.
        theirs.pop(VERIFY_URL_KEY, None)
    changed = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
    if changed:
        raise VerificationError(_CHANGED_INFO.format(", ".join(changed)))


def _information(pdf: _Pdf) -> dict[str, str]:
    """The document information, text as text (however it is encoded), anything else by digest."""
    info = pdf.reader.metadata
    if info is None:
        return {}
    values: dict[str, str] = {}
    for key in info:
        value = _resolved(info.get(key))
        values[str(key)] = str(value) if isinstance(value, str) else (pdf.digests.of(value)).hex()
    return values


def _rendering(document: dict[str, Any], token: str, url: str, holder_name: str) -> bytes:
    try:
        return render(document, token, verify_url=url, holder_name=holder_name)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VerificationError(f"签名报告无法排版 (the signed report cannot be printed: {exc})") from exc


@dataclass(frozen=True, slots=True)
class PrintedReport:
    """A printed report proven genuine: its signed document, the organisation whose
    signature the PDF carries (from its document-signing certificate), and the full name
    the pages print for the subject when the PDF is a person's own copy ("" otherwise:
    the pages print the document's name)."""

    document: dict[str, Any]
    sealed_by: str
    holder_name: str = ""


def _uncompressed_structure(pdf: _Pdf) -> None:
    """Refuse object and cross-reference streams before the signature is read: the
    gateway writes neither (its pages and its signing revision use plain cross-reference
    tables), and they are the parts of a PDF a reader must decode just to find its
    objects."""
    reader = pdf.reader
    if reader.xref_objStm or _XREF_STREAM.search(pdf.data) or b"/XRefStm" in pdf.data:
        markers, _ = _revisions(pdf.data)
        if markers > 2:  # the pages and the signature: anything more was appended, likely by the tool that did it
            raise VerificationError(_UPDATED.format(f"{markers} end-of-file markers, not 2"))
        raise VerificationError(
            _CHANGED_STRUCTURE.format("compressed object or cross-reference streams, which the gateway never writes")
        )


def check_pdf(
    data: bytes,
    keyring: Keyring,
    *,
    trust: SealTrust | None,
    verify_url_for: Callable[[dict[str, Any]], str] | None = None,
) -> PrintedReport:
    """A printed report proven genuine twice over, and who signed it.

    First the PDF signature (:func:`gateway.reports.seal.check_seal`): exactly one, by a
    document-signing certificate under a CA in ``trust``, covering the entire file, which
    is the rendered pages and that one signing revision. Then the pages, as
    :func:`verify_pdf` says.

    Raises:
        PdfTooLarge: more pages than :data:`MAX_PAGES`, or streams that decode to more
            than :data:`MAX_DECODED_BYTES`.
        VerificationError: no CA to check the signature against; the PDF is not signed,
            its signature is broken, untrusted or followed by an update; or the pages
            are not genuine (see :func:`verify_pdf`).
    """
    if trust is None:
        raise VerificationError(
            "未配置签发机构的根证书，无法核验 PDF 的电子签名 (no CA is configured to check PDF signatures against)"
        )
    with apply_configuration(**_UNTRUSTED), _reading():
        whole = _Pdf.read(data, limit=MAX_DECODED_BYTES)
        if whole.reader.is_encrypted:
            raise VerificationError("PDF 已加密 (the PDF is encrypted; the gateway never encrypts a report)")
        _uncompressed_structure(whole)
    sealed = check_seal(data, trust)
    document, holder_name = _verify_pages(data[: sealed.pages_end], keyring, verify_url_for=verify_url_for)
    return PrintedReport(document, sealed.organisation, holder_name)


def verify_pdf(
    data: bytes,
    keyring: Keyring,
    *,
    trust: SealTrust | None,
    verify_url_for: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """The signed document of a printed report, once the PDF is proven genuine.

    The PDF must carry the issuing organisation's signature (PAdES, checked against the
    CAs in ``trust``: see :func:`check_pdf`), covering the whole file: the rendered pages
    and the signing revision. The pages are then proven on their own: the attached
    ``report.jws`` must verify against ``keyring``; only then are the pages read. They
    must be exactly what that signed document prints as: the document is rendered again
    and compared with the pages by value (stream encodings and object numbers aside).
    The same number of pages, each with the same decoded content stream, the same fonts
    and font programs, images, page boxes and annotations (none), and no page actions;
    the same document catalog (no added open action, ``/AA``, JavaScript, embedded file,
    form, XMP metadata or outline); the same document information (Title, Author, …);
    and no revision besides the pages'.

    The verify URL the QR codes carry is part of what is printed. ``verify_url_for``
    gives it for a document (a verifier that knows its own verify page should pass it,
    which also proves the QR code leads there); without it, the URL the PDF records in
    its document information is used.

    So is the holder's full name in a person's own copy (see :func:`render`): the pages
    are rendered again with the name the PDF records, which must be a person's and fit
    the name the signed document publishes (李建华 for 李*华). The signed report does not
    vouch for it; the organisation's signature over the file does.

    An upload is read within limits: at most :data:`MAX_PAGES` pages, and streams that
    decode to at most :data:`MAX_DECODED_BYTES` together, each stream decoded only as
    far as that allows.

    Raises:
        PdfTooLarge: more pages than :data:`MAX_PAGES`, or streams that decode to more
            than :data:`MAX_DECODED_BYTES`.
        VerificationError: not a readable PDF, or encrypted; not signed by the issuing
            organisation, or its signature broken, untrusted or followed by an update;
            no ``report.jws`` attached (or several); the JWS does not verify (malformed,
            unknown key, altered: see :func:`credit.signing.verify`); the signed payload
            is not a credit report; no verify URL recorded and none given; a holder's
            name recorded for a subject that is not a person, or not fitting; the printed
            pages differ from the signed report's (with the first page that differs); or
            anything added or changed beyond them, with what was found.
    """
    return check_pdf(data, keyring, trust=trust, verify_url_for=verify_url_for).document


def _verify_pages(
    data: bytes, keyring: Keyring, *, verify_url_for: Callable[[dict[str, Any]], str] | None
) -> tuple[dict[str, Any], str]:
    """The signed document of the rendered pages (the first revision), proven to be
    exactly what that document prints as (for its holder, in a person's own copy), and
    the holder's name ("" for any other copy)."""
    with apply_configuration(**_UNTRUSTED):
        with _reading():
            given = _Pdf.read(data, limit=MAX_DECODED_BYTES)
            token = _embedded_jws(given)
            recorded_url = _recorded_verify_url(given)
            holder_name = _recorded_holder_name(given)
        # The signature first: for a PDF without a genuine report, no page is read.
        document = verify(token, keyring)
        if document.get("format") != FORMAT:
            raise VerificationError(
                f"签名内容不是信用报告 (the signed payload is not a credit report: format {document.get('format')!r})"
            )
        if verify_url_for is not None:
            url = verify_url_for(document)
        elif recorded_url is not None:
            url = recorded_url
        else:
            raise VerificationError("PDF 未记录核验地址 (the PDF does not record its verify URL)")
        refused = _holder_name_refused(document, holder_name) if holder_name else ""
        if refused:
            raise VerificationError(
                f"PDF 所印姓名与报告不符 (the PDF's holder name cannot stand for the subject: {refused})"
            )
        with _reading():
            count = _page_count(given)
        expected = _Pdf.read(_rendering(document, token, url, holder_name), limit=None)
        with _reading():
            _check_revisions(given, expected)
            if count != len(expected.reader.pages):
                raise VerificationError(
                    f"{_MISMATCH}: {count} pages, the signed report prints as {len(expected.reader.pages)})"
                )
            _check_document(given, expected)
            _check_pages(given, expected)
            _check_info(given, expected)
    return document, holder_name
