"""Reading published files: CSV (UTF-8 with or without BOM, GB18030), XLSX/XLS, JSONL.

A reader finds the header row (title lines above it are skipped), recognises its layout
(:mod:`credit.layouts`) and yields batches as polars frames: one text column per field
the layout fills, and each row's line (CSV) or row number (spreadsheet) in ``__line``.
CSV is cut into blocks at record boundaries and each block parsed by Arrow's CSV reader;
a block holding a malformed row (a wrong number of fields) or a quoted line break is
parsed again by Python's csv module, so every row keeps its exact line number and a
malformed row is rejected with its reason instead of failing the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from credit.errors import InvalidInput
from credit.layouts import Layout, Mapping, cell_text, normalise_header, recognise, refuse

LINE = "__line"
FIRST = "__first"
BLOCK_BYTES = 8 << 20
SHEET_BATCH = 50_000
HEADER_SEARCH = 30  # rows looked at for the header
SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".jsonl", ".ndjson")


@dataclass(slots=True)
class Source:
    """What a reader learned about the file; malformed rows are rejected as they come."""

    layout: Layout | None = None
    encoding: str = ""
    sheet: str = ""
    header_line: int = 0
    # line, reason, raw; a deque, since the reader thread adds while the checker takes
    malformed: deque[tuple[int, str, str]] = field(default_factory=deque)


def open_source(path: Path, source: Source, *, encoding: str = "", sheet: str = "") -> Iterator[pl.DataFrame]:
    """Batches of the file's rows by field (see the module docstring).

    Raises:
        InvalidInput: the file cannot be read as a whole (unknown type or encoding, no
            recognisable header, unreadable workbook); nothing of it is returned.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput.for_field("file", f"不支持的文件类型 '{suffix}' (use .csv, .xlsx, .xls or .jsonl)")
    if not path.is_file():
        raise InvalidInput.for_field("file", f"文件不存在 {path} (no such file)")
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return _sheet_batches(path, source, sheet)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_batches(path, source)
    return _csv_batches(path, source, encoding)


def _frame(rows: Sequence[Sequence[str]], lines: Sequence[int], mapping: Mapping) -> pl.DataFrame:
    """Rows of cells (already of the header's width) as a frame by field."""
    columns: dict[str, Any] = {LINE: pl.Series(LINE, lines, dtype=pl.Int64)}
    for name, positions in mapping.positions.items():
        if len(positions) == 1:
            columns[name] = [r[positions[0]] if positions[0] < len(r) else "" for r in rows]
        else:
            columns[name] = [
                "；".join(v for p in positions if (v := (r[p] if p < len(r) else "").strip())) for r in rows
            ]
    columns[FIRST] = [r[0] if r else "" for r in rows]
    return pl.DataFrame(columns, schema={k: (pl.Int64 if k == LINE else pl.String) for k in columns})


def _from_table(table: pa.Table, first_line: int, mapping: Mapping) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    exprs: list[pl.Expr] = [pl.int_range(first_line, first_line + frame.height, dtype=pl.Int64).alias(LINE)]
    for name, positions in mapping.positions.items():
        cols = [pl.col(f"c{p}") for p in positions]
        if len(cols) == 1:
            exprs.append(cols[0].alias(name))
        else:
            stripped = [pl.when(c.str.strip_chars() == "").then(None).otherwise(c.str.strip_chars()) for c in cols]
            exprs.append(pl.concat_str(stripped, separator="；", ignore_nulls=True).fill_null("").alias(name))
    exprs.append(pl.col("c0").alias(FIRST))
    return frame.select(exprs)


# CSV


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) when the head of the file decodes as such, else GB18030
    (what Excel's CSV writes on Chinese Windows; a superset of GBK and GB2312)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _decoder_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInput.for_field("encoding", f"未知编码 '{encoding}' (unknown encoding)") from None


def _find_header(lines: list[str]) -> tuple[int, int, list[str], Mapping]:
    """(physical lines before the header, and up to its end; header cells; mapping) from
    the first lines of a file.

    Raises:
        InvalidInput: no row among the first ones is a header any layout reads.
    """
    reader = csv.reader(lines)
    seen: list[list[str]] = []
    consumed = 0
    for row in reader:
        if len(seen) >= HEADER_SEARCH:
            break
        mapping = recognise(row)
        if mapping is not None:
            return consumed, reader.line_num, row, mapping
        consumed = reader.line_num
        if any(cell.strip() for cell in row):
            seen.append(row)
    if not seen:
        raise InvalidInput.for_field("file", "文件为空 (the file is empty)")
    widest = max(seen, key=lambda r: sum(1 for c in r if normalise_header(c)))
    raise refuse(widest)


def _csv_batches(path: Path, source: Source, encoding: str) -> Iterator[pl.DataFrame]:
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    if not head.strip():
        raise InvalidInput.for_field("file", "文件为空 (the file is empty)")
    name = _decoder_name(encoding) if encoding else detect_encoding(head)
    source.encoding = {"utf-8-sig": "UTF-8 (BOM)", "utf-8": "UTF-8", "gb18030": "GB18030"}.get(name, name)
    try:
        text = (
            head.decode(name, errors="strict")
            if len(head) < (1 << 20)
            else codecs.getincrementaldecoder(name)().decode(head)
        )
    except UnicodeDecodeError as exc:
        at = head[: exc.start].count(b"\n") + 1
        raise InvalidInput.for_field(
            "file",
            f"文件不是 {source.encoding} 编码 (not {source.encoding} at line {at}: {exc.reason}; try --encoding)",
        ) from exc
    # Physical lines as the csv module reads them (only \n, \r and \r\n end a line).
    lines = list(itertools.islice(io.StringIO(text, newline=""), HEADER_SEARCH * 4))
    skipped, end, header, mapping = _find_header(lines)
    source.layout = mapping.layout
    source.header_line = skipped + 1
    # Byte offset of the first data line: the decoded lines up to it, encoded back.
    prefix = "".join(lines[:end])
    start = len(prefix.encode("utf-8" if name == "utf-8-sig" else name)) + (3 if name == "utf-8-sig" else 0)
    first_line = end + 1
    return _csv_body(path, source, name, start, first_line, len(header), mapping)


def _csv_body(
    path: Path, source: Source, encoding: str, start: int, first_line: int, width: int, mapping: Mapping
) -> Iterator[pl.DataFrame]:
    names = [f"c{i}" for i in range(width)]
    read_options = pacsv.ReadOptions(column_names=names, use_threads=True, block_size=BLOCK_BYTES + (1 << 20))
    # Only the columns a field reads are converted (every row is still split in full, so a
    # row with a wrong number of fields is still caught).
    wanted = sorted({0, *(p for positions in mapping.positions.values() for p in positions)})
    convert = pacsv.ConvertOptions(
        column_types={names[i]: pa.string() for i in wanted},
        include_columns=[names[i] for i in wanted],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    utf8 = encoding in ("utf-8", "utf-8-sig")
    with path.open("rb") as handle:
        handle.seek(start)
        line = first_line
        for block in _blocks(handle, BLOCK_BYTES):
            if utf8:
                data = block  # Arrow checks it is UTF-8; a block that is not goes to the fallback
            else:
                try:
                    data = block.decode(encoding).encode("utf-8")
                except UnicodeDecodeError as exc:
                    at = line + block.count(b"\n", 0, exc.start)
                    raise InvalidInput.for_field(
                        "file", f"文件不是 {source.encoding} 编码 (not {source.encoding} at line {at}: {exc.reason})"
                    ) from exc
            newlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            invalid: list[int] = []

            def on_invalid(row: Any, invalid: list[int] = invalid) -> str:
                invalid.append(1)
                return "skip"

            table = None
            try:
                table = pacsv.read_csv(
                    io.BytesIO(data),
                    read_options=read_options,
                    parse_options=pacsv.ParseOptions(
                        invalid_row_handler=on_invalid, newlines_in_values=True, ignore_empty_lines=False
                    ),
                    convert_options=convert,
                )
            except (pa.ArrowInvalid, pa.ArrowException):
                table = None
            if table is not None and not invalid and table.num_rows == newlines:
                yield _from_table(table, line, mapping)
            else:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    at = line + data.count(b"\n", 0, exc.start)
                    raise InvalidInput.for_field(
                        "file", f"文件不是 UTF-8 编码 (not UTF-8 at line {at}: {exc.reason}; try --encoding gb18030)"
                    ) from exc
                yield _python_block(text, line, width, mapping, source)
            line += newlines


def _python_block(text: str, line: int, width: int, mapping: Mapping, source: Source) -> pl.DataFrame:
    rows: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 0
    try:
        for values in reader:
            number = line + start
            start = reader.line_num
            if len(values) == width:
                rows.append(values)
                lines.append(number)
            elif not values or all(not v.strip() for v in values):
                continue
            else:
                source.malformed.append(
                    (
                        number,
                        f"列数 {len(values)} 与表头 {width} 不符 (row has {len(values)} fields, header has {width})",
                        ",".join(values),
                    )
                )
    except csv.Error as exc:
        raise InvalidInput.for_field("file", f"CSV 格式错误 (malformed CSV: {exc})") from exc
    return _frame(rows, lines, mapping)


def _record_boundary(data: bytes) -> int:
    """Index just past the last newline that ends a record in ``data``, or -1: a newline
    preceded by an even number of quote characters (quoted fields may hold newlines).
    Safe in GB18030 too, whose multi-byte characters never use the bytes of '"' or '\\n'."""
    quotes = data.count(b'"')
    pos = data.rfind(b"\n")
    while pos != -1:
        if (quotes - data.count(b'"', pos + 1)) % 2 == 0:
            return pos + 1
        pos = data.rfind(b"\n", 0, pos)
    return -1


def _blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Blocks of whole records."""
    carry = b""
    while True:
        chunk = handle.read(size)
        if not chunk:
            if carry.strip():
                yield carry
            return
        data = carry + chunk
        cut = _record_boundary(data)
        if cut <= 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        yield block


# Spreadsheets


def _sheet_batches(path: Path, source: Source, sheet: str) -> Iterator[pl.DataFrame]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise InvalidInput.for_field("file", f"无法读取工作簿 (cannot read the workbook: {exc})") from exc
    names = list(book.sheet_names)
    if sheet:
        if sheet in names:
            chosen = sheet
        elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
            chosen = names[int(sheet) - 1]
        else:
            raise InvalidInput.for_field("sheet", f"工作表 '{sheet}' 不存在，可选：{'、'.join(names)} (no such sheet)")
    elif names:
        chosen = names[0]
    else:
        raise InvalidInput.for_field("file", "工作簿中没有工作表 (the workbook has no sheet)")
    source.sheet = chosen
    source.encoding = path.suffix.lower().lstrip(".").upper()
    rows_iter = iter(book.get_sheet_by_name(chosen).iter_rows())
    head: list[list[str]] = []
    for raw in rows_iter:
        head.append([cell_text(v) for v in raw])
        if len(head) >= HEADER_SEARCH:
            break
    found: tuple[int, list[str], Mapping] | None = None
    for i, row in enumerate(head):
        mapping = recognise(row)
        if mapping is not None:
            found = (i, row, mapping)
            break
    if found is None:
        filled = [r for r in head if any(c.strip() for c in r)]
        if not filled:
            raise InvalidInput.for_field("file", "工作表为空 (the sheet is empty)")
        raise refuse(max(filled, key=lambda r: sum(1 for c in r if normalise_header(c))))
    index, header, mapping = found
    source.layout = mapping.layout
    source.header_line = index + 1
    width = len(header)
    return _sheet_body(head[index + 1 :], rows_iter, index + 2, width, mapping)


def _sheet_body(
    head: list[list[str]], rest: Iterator[list[Any]], first_row: int, width: int, mapping: Mapping
) -> Iterator[pl.DataFrame]:
    def padded(cells: list[str]) -> list[str]:
        return (cells + [""] * width)[:width] if len(cells) != width else cells

    rows = [padded(r) for r in head]
    number = first_row
    for raw in rest:
        rows.append(padded([cell_text(v) for v in raw]))
        if len(rows) >= SHEET_BATCH:
            yield _frame(rows, range(number, number + len(rows)), mapping)
            number += len(rows)
            rows = []
    if rows:
        yield _frame(rows, range(number, number + len(rows)), mapping)


# JSONL


def _jsonl_batches(path: Path, source: Source) -> Iterator[pl.DataFrame]:
    from credit.layouts import layouts

    own = next(layout for layout in layouts() if layout.id == "jjj")
    source.layout = own
    source.encoding = "UTF-8"
    fields = sorted(set(own.columns.values()) - {""})
    mapping = Mapping(own, {f: (i,) for i, f in enumerate(fields)}, ())
    return _jsonl_body(path, source, own, fields, mapping)


def _jsonl_body(path: Path, source: Source, own: Layout, fields: list[str], mapping: Mapping) -> Iterator[pl.DataFrame]:
    index = {f: i for i, f in enumerate(fields)}
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    source.malformed.append((number, f"不是有效 JSON (invalid JSON: {exc.msg})", text.rstrip("\n")))
                    continue
                if not isinstance(obj, dict):
                    source.malformed.append(
                        (number, "每行应为一个 JSON 对象 (each line must be a JSON object)", text.rstrip("\n"))
                    )
                    continue
                row = [""] * len(fields)
                for key, value in obj.items():
                    f = own.columns.get(normalise_header(str(key)))
                    if f and value is not None:
                        row[index[f]] = str(value)
                if obj.get("subject_kind") == "person" and row[index["uscc"]] and not row[index["resident_id"]]:
                    row[index["resident_id"]], row[index["uscc"]] = row[index["uscc"]], ""
                rows.append(row)
                lines.append(number)
                if len(rows) >= SHEET_BATCH:
                    yield _frame(rows, lines, mapping)
                    rows, lines = [], []
    except UnicodeDecodeError as exc:
        raise InvalidInput.for_field("file", f"文件不是 UTF-8 编码 (not UTF-8: {exc.reason})") from exc
    if rows:
        yield _frame(rows, lines, mapping)
