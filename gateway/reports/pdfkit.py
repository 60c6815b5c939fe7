"""What every PDF the gateway prints is set with: the A4 page and its margins, the
colours, the two faces and the paragraph styles, the grid table, a canvas that numbers
"第 x 页 / 共 y 页", the QR code, how times and empty values print, and the signed
attachment that lets a PDF be verified from the file alone. The printed report
(:mod:`gateway.reports.pdf`), the batch summary (:mod:`gateway.batch.summary_pdf`) and
the grant slip (:mod:`gateway.reports.slip`) share them, so they print alike.

Fonts: Chinese is set in a subset of Droid Sans Fallback that ships in
``gateway/reports/fonts`` (Apache License 2.0, see the LICENSE file beside it); that font
has no Latin letters or digits, so those are set in Bitstream Vera, which ships with
ReportLab. Both are embedded (as subsets) in every PDF, so a page prints alike everywhere.

ReportLab keeps per-document state on the shared font objects: build one document at a
time, holding :data:`LOCK`.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab  # type: ignore[import-untyped]
import segno
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, ByteStringObject, NameObject, TextStringObject
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_CENTER  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import Paragraph, Table, TableStyle  # type: ignore[import-untyped]

FONT_DIR = Path(__file__).resolve().parent / "fonts"
CJK_FONT_FILE = FONT_DIR / "DroidSansFallback-Subset.ttf"
LATIN_FONT_FILE = Path(reportlab.__file__).resolve().parent / "fonts" / "Vera.ttf"
CJK = "JJJ-DroidSansFallback"
LATIN = "JJJ-Vera"

ATTACHMENT_MIME = "application/jose"  # a compact JWS (RFC 7515)

PAGE_W, PAGE_H = A4
MARGIN_X = 16 * mm
FOOTER_TOP = 16 * mm
FRAME_BOTTOM = 20 * mm
WIDTH = PAGE_W - 2 * MARGIN_X

INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#5c5c5c")
RULE = colors.HexColor("#9a9a9a")
HEAD = colors.HexColor("#1f3a5f")
RED = colors.HexColor("#b00020")
GREY_BG = colors.HexColor("#eef0f3")

# ReportLab keeps per-document state on shared font objects; one build at a time.
LOCK = threading.Lock()

_BEIJING = timezone(timedelta(hours=8))


# --------------------------------------------------------------------------- fonts


@cache
def register_fonts() -> tuple[frozenset[int], frozenset[int]]:
    """Register both faces once; the code points each of them has."""
    # Explicit settings rather than rl_config defaults, so that output never depends
    # on what another module configured: no shaping, the same code assignment.
    cjk = TTFont(CJK, str(CJK_FONT_FILE), asciiReadable=False, shapable=False)
    latin = TTFont(LATIN, str(LATIN_FONT_FILE), asciiReadable=True, shapable=False)
    pdfmetrics.registerFont(cjk)
    pdfmetrics.registerFont(latin)
    return frozenset(cjk.face.charToGlyph), frozenset(latin.face.charToGlyph)


def _runs(text: str) -> Iterator[tuple[str, str]]:
    """``text`` cut into runs of one face each: Latin for ASCII and what only Vera has."""
    cjk_chars, latin_chars = register_fonts()
    face = ""
    run: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            char, code = " ", 0x20
        ascii_or_latin_only = 0x20 <= code < 0x7F or (code not in cjk_chars and code in latin_chars)
        want = LATIN if ascii_or_latin_only else CJK
        if want != face and run:
            yield face, "".join(run)
            run = []
        face = want
        run.append(char)
    if run:
        yield face, "".join(run)


def _markup(text: object) -> str:
    """Paragraph markup of plain text, escaped, with the Latin runs in Vera."""
    parts = []
    for face, run in _runs(str(text)):
        chunk = escape(run)
        parts.append(chunk if face == CJK else f'<font face="{LATIN}">{chunk}</font>')
    return "".join(parts)


def text_width(text: str, size: float) -> float:
    return sum(float(pdfmetrics.stringWidth(run, face, size)) for face, run in _runs(text))


def draw_text(canvas: Any, x: float, y: float, text: str, size: float, *, align: str = "left") -> None:
    if align != "left":
        width = text_width(text, size)
        x -= width if align == "right" else width / 2
    for face, run in _runs(text):
        canvas.setFont(face, size)
        canvas.drawString(x, y, run)
        x += float(pdfmetrics.stringWidth(run, face, size))


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True, slots=True)
class Styles:
    title: Any
    banner: Any
    heading: Any
    body: Any
    small: Any
    cell: Any
    record: Any
    cell_head: Any
    verdict: Any


@cache
def styles() -> Styles:
    register_fonts()

    def style(name: str, size: float, leading: float, **extra: Any) -> Any:
        values: dict[str, Any] = {"fontName": CJK, "textColor": INK, "wordWrap": "CJK", **extra}
        return ParagraphStyle(name, fontSize=size, leading=leading, **values)

    return Styles(
        title=style("title", 17, 24, alignment=TA_CENTER, spaceAfter=4 * mm),
        banner=style("banner", 12.5, 18, textColor=RED, alignment=TA_CENTER),
        heading=style("heading", 11.5, 16, textColor=HEAD, spaceBefore=5 * mm, spaceAfter=2 * mm, keepWithNext=1),
        body=style("body", 9.5, 14.5, spaceAfter=1.5 * mm),
        small=style("small", 8, 11.5, textColor=MUTED),
        cell=style("cell", 8.5, 12),
        record=style("record", 8.5, 12, spaceBefore=3),
        cell_head=style("cell_head", 9, 12.5, textColor=HEAD),
        verdict=style("verdict", 13, 19, alignment=TA_CENTER),
    )


def paragraph(text: object, style: Any, *, color: Any = None) -> Any:
    """Plain ``text`` as a paragraph in ``style`` (escaped: it is never markup)."""
    markup = _markup(text)
    if color is not None:
        markup = f'<font color="{color.hexval()}">{markup}</font>'
    return Paragraph(markup, style)


# --------------------------------------------------------------------------- values


def beijing_time(value: object) -> str:
    """``2025-06-16T02:00:00Z`` as ``2025-06-16 10:00:00（北京时间）``; other text as is."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(_BEIJING):%Y-%m-%d %H:%M:%S}（北京时间）"


def pdf_date(value: object) -> str:
    """A PDF date string (``D:YYYYMMDDHHmmSS+00'00'``) of the issue time, fixed if unreadable."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = datetime(2000, 1, 1, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"D:{moment.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"


def or_dash(value: object) -> str:
    """``value`` as printed: a dash for none or empty."""
    return "—" if value is None or value == "" else str(value)


# --------------------------------------------------------------------------- tables and pages


def grid_table(rows: list[list[Any]], widths: Sequence[float], extra: Sequence[tuple[Any, ...]] = ()) -> Any:
    """A ruled table whose first row is its grey head, repeated on every page it runs onto."""
    table = Table(rows, colWidths=list(widths), repeatRows=1, splitInRow=36)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), LATIN, 8.5),
                ("GRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (-1, 0), GREY_BG),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 4),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                *extra,
            ]
        )
    )
    return table


def draw_qr(canvas: Any, url: str, x: float, y: float, size: float) -> None:
    """The QR code of ``url`` as filled rectangles, one per run of dark modules in a row."""
    matrix = segno.make(url, error="m", micro=False).matrix
    count = len(matrix)
    module = size / (count + 8)  # 4 modules of quiet zone on each side
    path = canvas.beginPath()
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 4) * module
        column = 0
        while column < count:
            if row[column]:
                start = column
                while column < count and row[column]:
                    column += 1
                path.rect(x + (start + 4) * module, top - module, (column - start) * module, module)
            else:
                column += 1
    canvas.saveState()
    canvas.setFillColor(colors.black)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def canvas_maker(decorate: Callable[[Any, int, int], None]) -> type:
    """A canvas that holds every page back until the end, when the page count is known."""

    class HeldPagesCanvas(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._held: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._held.append(dict(self.__dict__))
            self._startPage()

        def page_index(self) -> int:
            """The page being drawn, counted from 0."""
            return len(self._held)

        def save(self) -> None:
            held, total = self._held, len(self._held)
            for number, state in enumerate(held, start=1):
                self.__dict__.update(state)
                decorate(self, number, total)
                Canvas.showPage(self)
            Canvas.save(self)

    return HeldPagesCanvas


# --------------------------------------------------------------------------- the attachment


def attach_signed(
    pdf: bytes, *, jws: str, filename: str, description: str, moment: str, metadata: Mapping[str, str]
) -> bytes:
    """``pdf`` with ``jws`` attached as ``filename`` (:data:`ATTACHMENT_MIME`, the source
    of what the pages print: relationship ``/Source``, listed in the catalogue's ``/AF``),
    the document information ``metadata`` with both its dates ``moment`` (a PDF date
    string, as :func:`pdf_date` gives), and a file identifier derived from ``jws``. The
    same arguments always give the same bytes.

    Raises:
        UnicodeEncodeError: ``jws`` is not ASCII (a compact JWS always is).
    """
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf), strict=True))
    attachment = writer.add_attachment(filename, jws.encode("ascii"))
    attachment.subtype = NameObject("/" + ATTACHMENT_MIME)
    attachment.description = TextStringObject(description)
    attachment.associated_file_relationship = NameObject("/Source")
    attachment_date = datetime.strptime(moment[2:16], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    attachment.creation_date = attachment_date
    attachment.modification_date = attachment_date
    filespec = attachment.pdf_object.indirect_reference
    if filespec is not None:
        writer.root_object[NameObject("/AF")] = ArrayObject([filespec])
    writer.add_metadata({**metadata, "/CreationDate": moment, "/ModDate": moment})
    # The file identifier is meant to be unique; ReportLab's invariant one is the same
    # for every file, so derive it from what makes this document this document.
    identifier = ByteStringObject(hashlib.sha256(jws.encode("ascii")).digest()[:16])
    writer._ID = ArrayObject([identifier, identifier])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
