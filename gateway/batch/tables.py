"""The statistics table (协助核查情况统计表) of a batch job: CSV, XLSX and the signed summary."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from credit import labels
from credit.catalogue import Domain, Scope, domains
from credit.clock import iso_z
from credit.errors import FailedPrecondition
from credit.regions import Region
from credit.signing import BATCH_SUMMARY_FORMAT, TokenType, sign
from gateway.batch.jobs import BatchService, JobStatus, Row, escaped
from gateway.reports.service import ReportService

HEADER = ["序号", "主体代码", "主体类型", "核查结果", *(f"{r.name_zh}" for r in Region), "有记录的领域", "说明"]


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection). Tab and CR
# are escaped before this is asked; they are listed so the rule holds on its own.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def table_text(value: str) -> str:
    """A text cell as the table has it, in CSV and XLSX alike: control characters shown
    as escapes, and a cell that begins like a formula prefixed with ``'`` (OWASP).
    The numbers the gateway writes itself (序号) are not text and stay numbers."""
    text = escaped(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _table_rows(rows: Iterable[Row]) -> Iterator[list[int | str]]:
    names = domains()
    for number, row in enumerate(rows, start=1):
        yield [number, *map(table_text, _texts(row, names))]


def _texts(row: Row, names: Mapping[str, Domain]) -> list[str]:
    """A row's cells after 序号, before :func:`table_text` makes them safe."""
    if row.rejected:
        return [row.subject, "", "代码无效", "", "", "", "", row.rejected]
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
    return [row.subject, labels.SUBJECT_KIND.get(str(row.kind), str(row.kind)), verdict, *cells, "；".join(found), note]


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


def xlsx(rows: Iterable[Row], path: str, *, title: str) -> None:
    """The statistics table as an XLSX workbook at ``path`` (written as it streams), with
    the same cells as the CSV; ``title`` (which holds the purpose) is made safe too."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("协助核查情况统计表")

    def cells(values: Iterable[int | str]) -> list[Any]:
        out = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # a value, never a formula, whatever it begins with
            out.append(cell)
        return out

    sheet.append(cells([table_text(title)]))
    sheet.append(cells(HEADER))
    for line in _table_rows(rows):
        sheet.append(cells(line))
    book.save(path)


@dataclass(frozen=True, slots=True)
class Summary:
    document: dict[str, Any]
    jws: str


def summarise(status: JobStatus, rows: Iterable[Row], service: ReportService) -> Summary:
    """Counts over the whole table, the CSV's SHA-256, signed by the gateway."""
    counts = {"subjects": 0, "rejected": 0, "with_records": 0, "clear": 0, "incomplete": 0}
    per_region = {region.value: {"with_records": 0, "no_record": 0, "unavailable": 0} for region in Region}
    digest = hashlib.sha256()

    def counted(source: Iterable[Row]) -> Iterator[Row]:
        for row in source:
            counts["subjects"] += 1
            if row.rejected:
                counts["rejected"] += 1
            else:
                any_hit = any(hits for hits in row.regions.values() if hits)
                any_missing = any(hits is None for hits in row.regions.values())
                counts["with_records" if any_hit else "incomplete" if any_missing else "clear"] += 1
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
    return await asyncio.to_thread(summarise, status, batches.rows(status.job_id), batches.reports)


async def stream_csv(rows: Iterator[Row]) -> AsyncIterator[bytes]:
    """The CSV pieces, each produced on a worker thread (reading chunks is I/O)."""
    pieces = csv_chunks(rows)
    while True:
        piece = await asyncio.to_thread(next, pieces, None)
        if piece is None:
            return
        yield piece
