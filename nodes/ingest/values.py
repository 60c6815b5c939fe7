"""Cell values as authorities write them: empty markers, dates, codes, amounts.

Pure functions over one value; the columnar loader applies them to each distinct value
of a column once, so they may be as careful as they need to be.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation


class RowError(Exception):
    """One row's reason for rejection (Chinese first, English in brackets)."""

    def __init__(self, reason: str, *, authority: str = "") -> None:
        super().__init__(reason)
        self.authority = authority  # set when the reason is an authority that maps to no domain


# What publishers write for "nothing here".
EMPTY_MARKERS = frozenset(
    {"-", "--", "---", "—", "——", "— —", "－", "/", "／", "\\", "无", "空", "暂无", "null", "NULL", "None",
     "N/A", "n/a", "#N/A", "NA"}
)  # fmt: skip
# What they write for an end date that never comes.
OPEN_ENDED = frozenset({"长期", "永久", "长期有效", "无期限", "至今"})

_EDGE = r"[\s\u200b-\u200f\u2060\ufeff]"
EDGE_SPACE = re.compile(f"^{_EDGE}+|{_EDGE}+$")
# The same characters as a set, for column-wise stripping.
SPACE_CHARS = "".join(ch for ch in map(chr, [*range(0x2100), 0x3000, 0xFEFF]) if re.match(_EDGE, ch))
_INNER_SPACE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]+")


def clean_text(value: str) -> str:
    """Surrounding spaces (also full-width and zero-width) removed; an empty marker is "".

    Raises nothing.
    """
    value = EDGE_SPACE.sub("", value)
    return "" if value in EMPTY_MARKERS else value


_EXCEL_NUMBER = re.compile(r"^\d(\.\d+)?E\+?\d+$")


def clean_code(value: str) -> str:
    """An identifier as written, cleaned: half-width, no spaces or invisible characters, no
    leading apostrophe (Excel's "text" mark), upper case; an empty marker is "".

    Raises nothing (see :func:`excel_mangled`).
    """
    value = _INNER_SPACE.sub("", unicodedata.normalize("NFKC", value)).lstrip("'").upper()
    return "" if value in EMPTY_MARKERS else value


def excel_mangled(code: str) -> RowError | None:
    """The reason a cleaned code cannot be used when Excel turned it into a number in
    scientific notation (its digits are lost for good), else None.

    Raises nothing.
    """
    if not _EXCEL_NUMBER.match(code):
        return None
    return RowError(
        f"代码 '{code}' 已被 Excel 改写为科学计数法，原号码无法恢复，请以文本格式导出 "
        f"(the code was turned into a number by Excel and its digits are lost: export it as text)"
    )


_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_FORMS = (
    re.compile(rf"^(\d{{4}})([-/.])(\d{{1,2}})\2(\d{{1,2}}){_TIME}$"),
    re.compile(rf"^(\d{{4}})(年)(\d{{1,2}})月(\d{{1,2}})日{_TIME}$"),
    re.compile(rf"^(\d{{4}})()(\d{{2}})(\d{{2}}){_TIME}$"),
)
_DAY_FIRST = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?:[ T].*)?$")
_EXCEL_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")
_EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(value: str, what: str) -> date:
    """A date in one of the forms publishers use: ``YYYY-MM-DD``, ``YYYY/M/D``,
    ``YYYY.MM.DD``, ``YYYY年M月D日``, ``YYYYMMDD``, each optionally with a time of day
    (dropped), or an Excel serial day number. ``value`` is cleaned and not empty.

    Raises:
        RowError: not a date, not a real day, or written day-first or with a
            two-digit year, which cannot be read without guessing.
    """
    for form in _DATE_FORMS:
        match = form.match(value)
        if match:
            try:
                return date(int(match[1]), int(match[3]), int(match[4]))
            except ValueError:
                raise RowError(f"{what} '{value}' 不是有效日期 (is not a valid date)") from None
    serial = _EXCEL_SERIAL.match(value)
    if serial:
        day = _EXCEL_EPOCH + timedelta(days=int(serial[1]))
        if 1950 <= day.year <= 2100:
            return day
    if _DAY_FIRST.match(value):
        raise RowError(
            f"{what} '{value}' 的年月日顺序不明确，请写作 YYYY-MM-DD "
            f"(day-first or two-digit-year date is ambiguous: use YYYY-MM-DD)"
        )
    raise RowError(f"{what} '{value}' 不是日期 (is not a date: use YYYY-MM-DD)")


def parse_amount(value: str) -> Decimal | None:
    """An amount (万元) as a number, or None when the cell holds none.

    Raises nothing: an amount that is not a number is left out of the summary text.
    """
    text = value.replace(",", "").replace("，", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def format_amount(amount: Decimal) -> str:
    """An amount without float noise or trailing zeros: 0.5, 12, 1.25."""
    text = format(amount.normalize(), "f")
    return text
