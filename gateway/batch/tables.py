"""The statistics table (协助核查情况统计表) of a batch job: CSV, XLSX and the signed summary."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import unicodedata
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credit import labels
from credit.catalogue import Domain, Scope, domains
from credit.clock import CHINA_TZ, iso_z
from credit.errors import FailedPrecondition
from credit.profiles import profiles
from credit.regions import Region
from credit.signing import BATCH_SUMMARY_FORMAT, TokenType, sign
from gateway.batch.jobs import BatchService, JobStatus, Row, add_row, escaped, no_counts
from gateway.reports.service import ReportService

HEADER = [
    "序号",
    "主体代码",
    "名单所列名称",
    "主体类型",
    "核查结果",
    *(f"{r.name_zh}" for r in Region),
    "有记录的领域",
    "说明",
]
TITLE = "协助核查情况统计表"


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection). Tab and CR
# are escaped before this is asked; they are listed so the rule holds on its own.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def table_text(value: str) -> str:
    """A text cell as the table has it, in CSV and XLSX alike: control characters shown
    as escapes, and a cell that begins like a formula prefixed with ``'`` (OWASP).
    The numbers the gateway writes itself (序号) are not text and stay numbers."""
    text = escaped(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def table_lines(rows: Iterable[Row]) -> Iterator[list[int | str]]:
    """The table's lines of ``rows`` (under :data:`HEADER`), as the CSV and XLSX have them."""
    return _table_rows(rows)


def _table_rows(rows: Iterable[Row]) -> Iterator[list[int | str]]:
    names = domains()
    for number, row in enumerate(rows, start=1):
        yield [row.number or number, *map(table_text, _texts(row, names))]


def _not_checked(row: Row, verdict: str, note: str) -> list[str]:
    return [row.subject, row.name, "", verdict, *([""] * len(Region)), "", note]


def _texts(row: Row, names: Mapping[str, Domain]) -> list[str]:
    """A row's cells after 序号, before :func:`table_text` makes them safe. The 说明 is in
    Chinese only (the nodes' reasons carry English for the API; a table is for people)."""
    if row.empty:
        return _not_checked(row, "空行", "空行，未核查")
    if row.duplicate_of:
        return _not_checked(row, "重复", f"与第 {row.duplicate_of} 行重复，核查结果见该行")
    if row.rejected:
        return _not_checked(row, "代码无效", labels.chinese_reason(row.rejected, fallback="主体代码无效"))
    cells, found, missing = [], [], []
    for region in Region:
        hits = row.regions.get(region.value)
        if hits is None:
            cells.append("暂不可用")
            missing.append(region.name_zh)
        elif hits:
            cells.append("有记录")
            found += [
                f"{region.name_zh}·{names[d].name if d in names else d}·{Scope(s).name_zh}×{n}" for d, s, n in hits
            ]
        else:
            cells.append("无记录")
    if found:
        verdict = "有记录"
    elif missing:
        verdict = "不完整"
    else:
        verdict = "三地均无记录"
    note = f"{'、'.join(missing)}暂不可用" if missing else ""
    kind = labels.SUBJECT_KIND.get(str(row.kind), str(row.kind))
    return [row.subject, row.name, kind, verdict, *cells, "；".join(found), note]


def csv_chunks(rows: Iterable[Row]) -> Iterator[bytes]:
    """The statistics table as CSV (UTF-8 with a BOM, which spreadsheet programs need to
    read Chinese), in pieces."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(HEADER)
    for n, line in enumerate(_table_rows(rows), start=1):
        writer.writerow(line)
        if n % 2000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


# XLSX: columns as wide as the text a sample of the first rows holds (a CJK character
# takes two widths of a digit), within bounds; the header row frozen and filtered.
WIDTH_SAMPLE = 500
MIN_WIDTH, MAX_WIDTH = 6, 60
_DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"


def display_width(text: str) -> int:
    """How many digit widths ``text`` takes in a spreadsheet: two for a wide character."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def column_widths(lines: Iterable[Sequence[int | str]]) -> list[int]:
    """A width per column of :data:`HEADER` that fits the header and ``lines``."""
    widest = [display_width(name) for name in HEADER]
    for line in lines:
        for index, value in enumerate(line):
            widest[index] = max(widest[index], display_width(str(value)))
    return [min(MAX_WIDTH, max(MIN_WIDTH, width + 2)) for width in widest]


def _beijing(moment: datetime | None) -> datetime | None:
    """A spreadsheet's date: Beijing wall time to the second, without a zone (cells have none)."""
    return None if moment is None else moment.astimezone(CHINA_TZ).replace(tzinfo=None, microsecond=0)


def xlsx(rows: Iterable[Row], path: str, *, status: JobStatus) -> None:
    """The statistics table as an XLSX workbook at ``path`` (written as it streams), with
    the same cells as the CSV under a title row (which holds the purpose, made safe too):
    序号 a number, the header row frozen and filtered, the columns fitted to their text.
    A second sheet (核查信息) gives the job: its purpose, who asked, when (dates as dates)
    and the counts."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(TITLE)
    bold = Font(bold=True)

    def cells(target: Any, values: Iterable[Any], *, font: Any = None) -> list[Any]:
        out = []
        for value in values:
            cell = WriteOnlyCell(target, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # a value, never a formula, whatever it begins with
            elif isinstance(value, datetime):
                cell.number_format = _DATE_FORMAT
            if font is not None:
                cell.font = font
            out.append(cell)
        return out

    counted = no_counts()
    lines = _table_rows(_counted(rows, counted))
    sample = list(itertools.islice(lines, WIDTH_SAMPLE))
    for index, width in enumerate(column_widths(sample), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A3"  # the title and the header stay in view
    sheet.append(cells(sheet, [table_text(f"{TITLE} · {status.purpose}")], font=bold))
    sheet.append(cells(sheet, HEADER, font=bold))
    last = 2
    for line in itertools.chain(sample, lines):
        sheet.append(cells(sheet, line))
        last += 1
    sheet.auto_filter.ref = f"A2:{get_column_letter(len(HEADER))}{last}"

    about = book.create_sheet("核查信息")
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = max(24, min(MAX_WIDTH, display_width(status.purpose) + 2))
    for label, value in _facts(status, counted):
        about.append(cells(about, [label, table_text(value) if isinstance(value, str) else value]))
    book.save(path)


def _counted(rows: Iterable[Row], counts: dict[str, int]) -> Iterator[Row]:
    """``rows``, counted into ``counts`` (see :func:`gateway.batch.jobs.no_counts`) as they pass."""
    for row in rows:
        add_row(counts, row)
        yield row


COUNT_WORDS = {
    "subjects": "名单行数",
    "with_records": "有记录",
    "clear": "三地均无记录",
    "incomplete": "不完整（部分地区暂不可用）",
    "rejected": "代码无效",
    "duplicates": "重复",
    "empty": "空行",
}


def _facts(status: JobStatus, counts: Mapping[str, int]) -> list[tuple[str, Any]]:
    profile = profiles().get(status.profile)
    return [
        ("任务编号", status.job_id),
        ("核查事由", status.purpose),
        ("提交人", status.created_by),
        ("报告规则", profile.title if profile is not None else status.profile),
        ("查询年限", f"近 {status.years} 年"),
        ("提交时间（北京时间）", _beijing(status.created_at)),
        ("完成时间（北京时间）", _beijing(status.finished_at) or "尚未完成"),
        *((COUNT_WORDS[key], counts.get(key, 0)) for key in COUNT_WORDS),
    ]


@dataclass(frozen=True, slots=True)
class Summary:
    document: dict[str, Any]
    jws: str


def summarise(status: JobStatus, rows: Iterable[Row], service: ReportService) -> Summary:
    """Counts over the whole table (every row of the list once: the kinds of row add up to
    ``subjects``), the CSV's SHA-256, signed by the gateway."""
    counts = no_counts()
    per_region = {region.value: {"with_records": 0, "no_record": 0, "unavailable": 0} for region in Region}
    digest = hashlib.sha256()

    def counted(source: Iterable[Row]) -> Iterator[Row]:
        for row in source:
            add_row(counts, row)
            if row.outcome in ("with_records", "clear", "incomplete"):  # a subject the regions were asked about
                for region, hits in row.regions.items():
                    per_region[region]["unavailable" if hits is None else "with_records" if hits else "no_record"] += 1
            yield row

    for piece in csv_chunks(counted(rows)):
        digest.update(piece)
    document = {
        "format": BATCH_SUMMARY_FORMAT,
        "title": "协助核查情况统计表",
        "job_id": status.job_id,
        "purpose": status.purpose,
        "requested_by": status.created_by,
        "profile": status.profile,
        "years": status.years,
        "created_at": iso_z(status.created_at),
        "finished_at": iso_z(status.finished_at) if status.finished_at else None,
        "status": status.status,
        "counts": counts,
        "regions": per_region,
        "table_csv_sha256": digest.hexdigest(),
        "issuer": service.issuer,
    }
    return Summary(document, sign(document, service.signing_key, typ=TokenType.BATCH_SUMMARY))


async def signed_summary(batches: BatchService, status: JobStatus) -> Summary:
    """The signed summary of a finished job.

    Raises:
        FailedPrecondition: the job is still running.
    """
    if status.status != "done":
        raise FailedPrecondition("核查尚未完成 (the batch is still running: its summary is signed when it is done)")
    summary = await asyncio.to_thread(summarise, status, batches.rows(status.job_id), batches.reports)
    if status.counts is None:  # a job done before its counts were kept with it: keep them now
        await batches.store.keep_counts(status.job_id, summary.document["counts"])
    return summary


async def stream_csv(rows: Iterator[Row]) -> AsyncIterator[bytes]:
    """The CSV pieces, each produced on a worker thread (reading chunks is I/O)."""
    pieces = csv_chunks(rows)
    while True:
        piece = await asyncio.to_thread(next, pieces, None)
        if piece is None:
            return
        yield piece
