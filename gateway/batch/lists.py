"""Reading an agency's uploaded list of subjects: CSV or plain lines (UTF-8 with or without a
BOM, or GB18030, which is what Excel on Chinese Windows saves) or an XLSX workbook (its
first sheet).

A list is rows; the header row, when there is one, names the columns. The code column is
the one headed like 统一社会信用代码 or 身份证号 (else the first column), and the name
column, when there is one, the one headed like 名称, 企业名称, 主体名称 or 姓名. Title rows
above the header and blank rows before the first and after the last row of the list are
not rows of the list; every row between them is, a blank one too (the table shows it as
空行), so the table has as many rows as the list. An entry is one row's code cell as
given: a quoted cell holding a line break stays one entry (which the gateway then
refuses, see :func:`gateway.batch.jobs.refusal`).

Errors (all :class:`~credit.errors.InvalidInput`, with a Chinese part a page shows)::

    InvalidInput   neither UTF-8 nor GB18030 text nor an XLSX workbook; an old .xls;
                   a workbook that cannot be read or inflates beyond the limit; malformed CSV
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from credit.errors import InvalidInput
from credit.layouts import cell_text, normalise_header

MAX_NAME = 200  # characters of a name cell
MAX_INFLATED = 512 * 1024 * 1024  # bytes a workbook may hold unpacked: a million rows fit well
HEADER_SEARCH = 20  # rows looked at for the header (title rows above it are skipped)

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls (and .doc) container
_UNREADABLE = (
    "名单无法读取：请上传 XLSX 文件，或 UTF-8、GB18030 编码的 CSV 文件 "
    "(the list is neither an XLSX workbook nor UTF-8 or GB18030 text)"
)

# Header cells, after normalise_header: what heads the code column and the name column.
_CODE_HEADER = re.compile(r"(统一社会信用代码|信用代码|主体代码|身份证|证件号|证照号|代码|识别号)")
_IDENTIFIER_LIKE = re.compile(r"\d{6}")  # every credit code and ID number has such a run; no header does
_NAME_HEADER = re.compile(r"^(.*名称|姓名|名字|企业|单位)$")


@dataclass(frozen=True, slots=True)
class SubjectList:
    """An uploaded list: an entry per row (its code cell, "" for a blank one) and, when the
    list has a name column, the name the row gives beside the code."""

    entries: list[str]
    names: list[str] | None


def read_list(data: bytes) -> SubjectList:
    """The rows of an uploaded list (see the module docstring).

    Raises:
        InvalidInput: the file is not a list the gateway reads (see the module docstring),
            or a name cell is longer than :data:`MAX_NAME` characters.
    """
    if data.startswith(_OLE2):
        raise InvalidInput.for_field(
            "file",
            "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV 后上传 (old .xls workbooks are not read: save as .xlsx)",
        )
    rows = _workbook_rows(data) if data.startswith(_ZIP) else _csv_rows(_text(data))
    return _listed(rows)


def _text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # NUL never occurs in a text list; a UTF-16 export or a binary file decodes with many.
        if "\x00" in text:
            break
        return text
    raise InvalidInput.for_field("file", _UNREADABLE)


def _csv_rows(text: str) -> Iterator[list[str]]:
    # newline="": the csv module, not the text layer, decides where a row ends, so a
    # file with bare CR line ends reads and a quoted line break stays in its cell.
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise InvalidInput.for_field("file", f"名单不是有效的 CSV (the list is not valid CSV: {exc})") from None


def _workbook_rows(data: bytes) -> Iterator[list[str]]:
    from python_calamine import CalamineWorkbook

    # The reader unpacks a sheet whole: refuse a small file that would unpack to gigabytes.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInput.for_field("file", _UNREADABLE) from None
    if inflated > MAX_INFLATED:
        raise InvalidInput.for_field("file", "工作簿过大 (the workbook unpacks to more than the limit)")
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = list(book.sheet_names)
        if not names:
            raise InvalidInput.for_field("file", "工作簿中没有工作表 (the workbook has no sheet)")
        rows = list(book.get_sheet_by_name(names[0]).iter_rows())
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - the reader's own errors: the file is not a workbook it reads
        raise InvalidInput.for_field("file", f"无法读取工作簿 (cannot read the workbook: {exc})") from None
    for row in rows:
        yield [cell_text(value) for value in row]


def _blank(row: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in row)


@dataclass(frozen=True, slots=True)
class _Columns:
    header: int  # the header row's index among the rows looked at, -1 when the list has none
    code: int
    name: int  # -1: no name column


def _columns(head: Sequence[Sequence[str]]) -> _Columns:
    """Where the header row is and which columns hold the codes and the names."""
    for index, row in enumerate(head):
        if any(_IDENTIFIER_LIKE.search(cell) for cell in row):
            continue  # a row of the list (a name such as 某某代码科技有限公司 heads nothing)
        cells = [normalise_header(cell) for cell in row]
        codes = [i for i, cell in enumerate(cells) if _CODE_HEADER.search(cell) and len(cell) <= 20]
        if codes:
            names = [i for i, cell in enumerate(cells) if i not in codes and _NAME_HEADER.match(cell)]
            return _Columns(index, codes[0], names[0] if names else -1)
    # No header names a code column: the first filled row is a header when its first cell
    # holds no digit (every identifier does), and the codes are in the first column.
    for index, row in enumerate(head):
        if not _blank(row):
            return _Columns(index if not any(ch.isdigit() for ch in row[0]) else -1, 0, -1)
    return _Columns(-1, 0, -1)


def _listed(rows: Iterable[list[str]]) -> SubjectList:
    source = iter(rows)
    head = []
    for row in source:
        head.append(row)
        if len(head) >= HEADER_SEARCH:
            break
    columns = _columns(head)
    entries: list[str] = []
    names: list[str] = []
    blanks = 0  # blank rows not yet known to lie between rows of the list
    after_header = head[columns.header + 1 :] if columns.header >= 0 else head

    def cell(row: Sequence[str], at: int) -> str:
        return row[at].strip() if 0 <= at < len(row) else ""

    for row in _chain(after_header, source):
        code, name = cell(row, columns.code), cell(row, columns.name)
        if not code and not name:
            blanks += 1
            continue
        if entries:  # blank rows between rows of the list are rows of it
            entries += [""] * blanks
            names += [""] * blanks
        blanks = 0
        if len(name) > MAX_NAME:
            raise InvalidInput.for_field(
                "file",
                f"第 {len(entries) + 1} 行的名称超过 {MAX_NAME} 个字符，请检查名单的名称列 "
                f"(the name in row {len(entries) + 1} is longer than {MAX_NAME} characters)",
            )
        entries.append(code)
        names.append(name)
    return SubjectList(entries, names if columns.name >= 0 else None)


def _chain(first: Iterable[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from first
    yield from rest
