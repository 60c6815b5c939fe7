"""Loading authorities' files into a node: CSV in the national 双公示 layout, and JSONL.

Every row is validated on its own. A bad row goes to the rejects report with its line
number and the reason, and the good rows load; a file that cannot be read at all (not
UTF-8, no header, a required column missing) loads nothing. The whole file is stored in
one transaction, so an interrupted ingest leaves the node as it was, and loading the
same file again changes no record (see :func:`nodes.store.plan_versions`).

CSV columns (Chinese, as in the national publicity format; aliases in brackets):

    行政相对人名称                        subject name (required)
    统一社会信用代码 [行政相对人代码_1]    enterprise code, or
    证件号码 [身份证号码]                  resident ID number for a person
    行政相对人类别                        法人及非法人组织 / 个体工商户 / 自然人 (optional)
    行政处罚决定书文号 [决定文书号]         decision number (required)
    处罚类别, 处罚内容                     category and content
    处罚决定日期 [决定日期, 列入日期]        decision or listing date (required)
    公示截止期                            end of publicity (optional)
    处罚机关 [决定机关, 列入机关]            authority (required)
    领域                                  domain code or name; inferred from the
                                          authority when the catalogue names it
    数据范围                              scope (default 行政处罚)
    程序类型                              简易程序 / 普通程序 (default 普通程序)
    状态                                  有效 / 已信用修复 / 已撤销 (default 有效)
    移出日期                              list entries: removal date
    记录编号                              the source's own record id (optional)

JSONL lines are objects with the same Chinese keys or the English field names of
``credit.v1.CreditRecord`` (subject_id, subject_name, decision_no, decided_on, …).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from credit.catalogue import Catalogue, Scope, catalogue, domain
from credit.errors import CreditError, InvalidInput
from credit.identifiers import Subject, SubjectKind, parse_subject
from credit.regions import Region
from credit.rules import Procedure, RecordStatus
from nodes.records import RecordDraft, make_draft
from nodes.store import Prepared, SqlRecordWriter, WriteCounts, prepare

BATCH_ROWS = 20_000
_SUBJECT_CACHE = 500_000

# Canonical field -> accepted column names (Chinese first, then English).
_ALIASES: dict[str, tuple[str, ...]] = {
    "subject_name": ("行政相对人名称", "subject_name"),
    "uscc": ("统一社会信用代码", "行政相对人代码_1", "subject_id"),
    "resident_id": ("证件号码", "身份证号码", "法定代表人证件号码_自然人"),
    "subject_type": ("行政相对人类别", "subject_kind"),
    "decision_no": ("行政处罚决定书文号", "决定文书号", "decision_no"),
    "category": ("处罚类别", "category"),
    "content": ("处罚内容", "content"),
    "decided_on": ("处罚决定日期", "决定日期", "列入日期", "decided_on"),
    "publicity_until": ("公示截止期", "publicity_until"),
    "authority": ("处罚机关", "决定机关", "列入机关", "authority"),
    "domain": ("领域", "domain"),
    "scope": ("数据范围", "scope"),
    "procedure": ("程序类型", "procedure"),
    "status": ("状态", "status"),
    "removed_on": ("移出日期", "removed_on"),
    "record_id": ("记录编号", "record_id"),
}
_REQUIRED = ("subject_name", "decision_no", "decided_on", "authority")

_PROCEDURES = {
    "": Procedure.GENERAL,
    "普通程序": Procedure.GENERAL,
    "一般程序": Procedure.GENERAL,
    "general": Procedure.GENERAL,
    "简易程序": Procedure.SIMPLIFIED,
    "simplified": Procedure.SIMPLIFIED,
    "n/a": Procedure.NOT_APPLICABLE,
}
_STATUSES = {
    "": RecordStatus.IN_FORCE,
    "有效": RecordStatus.IN_FORCE,
    "in_force": RecordStatus.IN_FORCE,
    "已信用修复": RecordStatus.REPAIRED,
    "信用修复": RecordStatus.REPAIRED,
    "repaired": RecordStatus.REPAIRED,
    "已撤销": RecordStatus.REVOKED,
    "撤销": RecordStatus.REVOKED,
    "revoked": RecordStatus.REVOKED,
}
_DATE = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")
_MAX_LEN = {"subject_name": 200, "decision_no": 200, "authority": 200, "category": 200, "record_id": 64}


class RowError(Exception):
    """One row's reason for rejection."""


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class IngestReport:
    source: str
    rows_read: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    rejects: list[Reject] = field(default_factory=list)

    def write_rejects(self, path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", "row"])
            for r in self.rejects:
                writer.writerow([r.line, r.reason, r.raw])


def parse_date(value: str, what: str) -> date:
    if len(value) == 10 and value[4] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    match = _DATE.match(value.strip())
    if not match:
        raise RowError(f"{what} '{value}' 不是日期 (is not a date: use YYYY-MM-DD)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise RowError(f"{what} '{value}' 不是有效日期 (is not a valid date)") from None


class RowParser:
    """Turns one row (a mapping of canonical field → text) into a draft, or says why not."""

    def spec(self) -> tuple[str, tuple[str, ...], str]:
        """What a worker process needs to build the same parser."""
        return (self.catalogue.region.value, tuple(sorted(self.pilot_codes)), self.today.isoformat())

    def __init__(self, catalogue: Catalogue, *, pilot_codes: frozenset[str] = frozenset(), today: date) -> None:
        self.catalogue = catalogue
        self.pilot_codes = pilot_codes
        self.today = today
        # Authorities the catalogue names (other than the catch-all 各区) → domain.
        self._by_authority: dict[str, str] = {}
        for entry in catalogue.entries:
            for name in entry.authorities:
                if not name.startswith("各"):
                    self._by_authority.setdefault(name, entry.domain.code)
        self._covered = {
            (entry.domain.code, entry.subject, scope) for entry in catalogue.entries for scope in entry.scopes
        }
        self._domains: dict[str, str] = {}
        self._scopes = {key: scope for scope in Scope for key in (scope.value, scope.name_zh)}
        # Subjects repeat (several records each); validating each once is most of the
        # speed of a large load. Bounded: cleared when full.
        self._subjects: dict[tuple[str, str], Subject | str] = {}

    def _subject(self, raw_id: str, type_text: str, is_person: bool) -> Subject:
        key = (raw_id, type_text)
        known = self._subjects.get(key)
        if known is None:
            try:
                known = parse_subject(
                    raw_id,
                    kind=SubjectKind.PERSON if is_person else (SubjectKind.ENTERPRISE if type_text else None),
                    pilot_codes=self.pilot_codes,
                    today=self.today,
                )
            except CreditError as exc:
                known = exc.detail
            if len(self._subjects) >= _SUBJECT_CACHE:
                self._subjects.clear()
            self._subjects[key] = known
        if isinstance(known, str):
            raise RowError(known)
        return known

    def _domain(self, given: str, authority: str) -> str:
        if given:
            code = self._domains.get(given)
            if code is None:
                try:
                    code = self._domains[given] = domain(given).code
                except CreditError as exc:
                    raise RowError(exc.detail) from None
            return code
        for name, code in self._by_authority.items():
            if name in authority:
                return code
        raise RowError("领域为空且无法从处罚机关推断 (domain is empty and cannot be inferred from the authority)")

    def parse(self, row: dict[str, str]) -> RecordDraft:
        """A draft from one row whose every canonical field is present and stripped.

        Raises:
            RowError: the row's reason for rejection.
        """
        for name in _REQUIRED:
            if not row[name]:
                raise RowError(f"缺少必填字段 {_ALIASES[name][0]} (required field {name} is empty)")
        for name, limit in _MAX_LEN.items():
            if len(row[name]) > limit:
                raise RowError(f"{_ALIASES[name][0]} 超过 {limit} 字符 ({name} longer than {limit} characters)")
        if not row["record_id"].isprintable():
            raise RowError("记录编号含控制字符 (record id contains control characters)")
        type_text = row["subject_type"]
        is_person = type_text in ("自然人", "person")
        raw_id = (row["resident_id"] if is_person else row["uscc"]) or row["uscc"] or row["resident_id"]
        if not raw_id:
            raise RowError("缺少主体标识 (no unified social credit code or ID number)")
        subject = self._subject(raw_id, type_text, is_person)
        scope_text = row["scope"]
        scope = self._scopes.get(scope_text or "administrative_penalty")
        if scope is None:
            raise RowError(f"未知数据范围 '{scope_text}' (unknown scope '{scope_text}')")
        authority = row["authority"]
        domain_code = self._domain(row["domain"], authority)
        if (domain_code, subject.kind, scope) not in self._covered:
            raise RowError(
                f"本地区目录未覆盖 {domain_code} × {scope.value} ({subject.kind.value}) "
                f"(the {self.catalogue.region.value} catalogue does not cover this domain and scope)"
            )
        decided_on = parse_date(row["decided_on"], "处罚决定日期")
        if decided_on > self.today:
            raise RowError(f"处罚决定日期 {decided_on} 晚于今天 (decision date is in the future)")
        publicity = row["publicity_until"]
        publicity_until = parse_date(publicity, "公示截止期") if publicity else None
        if publicity_until and publicity_until < decided_on:
            raise RowError("公示截止期早于决定日期 (publicity ends before the decision date)")
        removed = row["removed_on"]
        removed_on = parse_date(removed, "移出日期") if removed else None
        if removed_on and removed_on < decided_on:
            raise RowError("移出日期早于列入日期 (removed before it was listed)")
        procedure_text = row["procedure"]
        procedure = _PROCEDURES.get(procedure_text)
        if procedure is None:
            raise RowError(f"未知程序类型 '{procedure_text}' (unknown procedure)")
        if not procedure_text and scope is not Scope.ADMINISTRATIVE_PENALTY:
            procedure = Procedure.NOT_APPLICABLE
        status = _STATUSES.get(row["status"])
        if status is None:
            raise RowError(f"未知状态 '{row['status']}' (unknown status)")
        return make_draft(
            record_id=row["record_id"],
            subject_id=subject.id,
            subject_kind=subject.kind,
            subject_name=row["subject_name"],
            domain=domain_code,
            scope=scope,
            decision_no=row["decision_no"],
            authority=authority,
            decided_on=decided_on,
            category=row["category"],
            content=row["content"],
            procedure=procedure,
            status=status,
            publicity_until=publicity_until,
            removed_on=removed_on,
        )


_CsvLayout = tuple[tuple[str, ...], Callable[[list[str]], tuple[str, ...]], int]


def _csv_layout(header: list[str]) -> _CsvLayout:
    """Where each canonical field is in rows under this header.

    Raises:
        InvalidInput: a required column is missing.
    """
    header = [h.strip().lstrip("\ufeff") for h in header]
    positions: dict[str, int] = {}
    for canonical, names in _ALIASES.items():
        for name in names:
            if name in header:
                positions[canonical] = header.index(name)
                break
    missing = [_ALIASES[n][0] for n in _REQUIRED if n not in positions]
    if "uscc" not in positions and "resident_id" not in positions:
        missing.append("统一社会信用代码 / 证件号码")
    if missing:
        raise InvalidInput.for_field("file", f"缺少列 {', '.join(missing)} (missing columns)")
    width = len(header)
    # Every canonical field, in one C-level gather; absent columns read the empty cell
    # appended at index ``width``.
    names = tuple(_ALIASES)
    gather = itemgetter(*(positions.get(name, width) for name in names))
    return names, gather, width


def _csv_body(reader: Any, layout: _CsvLayout, first_line: int) -> Iterator[tuple[int, dict[str, str], str]]:
    names, gather, width = layout
    for values in reader:
        line = first_line - 1 + reader.line_num
        if not values or values == [""]:
            continue
        if len(values) != width:
            error = f"列数 {len(values)} 与表头 {width} 不符 (row has {len(values)} fields, header has {width})"
            yield line, {"__error__": error}, ",".join(values)
            continue
        values.append("")
        yield line, dict(zip(names, map(str.strip, gather(values)), strict=True)), ""


def _csv_rows(text: io.TextIOBase) -> Iterator[tuple[int, dict[str, str], str]]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput.for_field("file", "文件为空 (the file is empty)") from None
    yield from _csv_body(reader, _csv_layout(header), 1)


def _jsonl_rows(text: io.TextIOBase) -> Iterator[tuple[int, dict[str, str], str]]:
    reverse = {name: canonical for canonical, names in _ALIASES.items() for name in names}
    reverse["subject_id"] = "uscc"
    for line_no, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, {"__error__": f"不是有效 JSON (invalid JSON: {exc.msg})"}, line.rstrip("\n")
            continue
        if not isinstance(obj, dict):
            yield line_no, {"__error__": "每行应为一个 JSON 对象 (each line must be a JSON object)"}, line.rstrip("\n")
            continue
        row = dict.fromkeys(_ALIASES, "")
        row.update((reverse[k], "" if v is None else str(v).strip()) for k, v in obj.items() if k in reverse)
        if row["subject_type"] == "person" and row["uscc"] and not row["resident_id"]:
            row["resident_id"], row["uscc"] = row["uscc"], ""
        yield line_no, row, ""


def _parse_rows(
    rows: Iterable[tuple[int, dict[str, str], str]], parser: RowParser, rejects: list[Reject]
) -> Iterator[RecordDraft]:
    for line, row, raw in rows:
        error = row.get("__error__")
        try:
            if error:
                raise RowError(error)
            yield parser.parse(row)
        except RowError as exc:
            rejects.append(Reject(line, str(exc), raw or json.dumps(row, ensure_ascii=False)))


def read_file(
    path: Path,
    parser: RowParser,
    report: IngestReport,
    *,
    workers: int = 0,
    block_bytes: int = 4 << 20,
) -> Iterator[list[Prepared]]:
    """Batches of records ready to store (:func:`nodes.store.prepare`), in file order;
    rejects are added to ``report``.

    With ``workers`` > 1, a CSV file is cut into blocks of whole records and parsed by
    that many worker processes (see :func:`_read_csv_parallel`); the result is the same.

    Raises:
        InvalidInput: the file cannot be read as a whole.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise InvalidInput.for_field("file", f"不支持的文件类型 '{suffix}' (use .csv or .jsonl)")
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput.for_field("file", f"无法读取 {path} (cannot read: {exc.strerror})") from exc
    if suffix == ".csv" and workers > 1:
        handle.close()
        yield from _read_csv_parallel(path, parser, report, workers=workers, block_bytes=block_bytes)
        return
    with handle:
        rows = _csv_rows(handle) if suffix == ".csv" else _jsonl_rows(handle)
        counted = _count(rows, report)
        batch: list[Prepared] = []
        try:
            for draft in _parse_rows(counted, parser, report.rejects):
                batch.append(prepare(draft))
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
        except UnicodeDecodeError as exc:
            raise InvalidInput.for_field("file", f"文件不是 UTF-8 编码 (not UTF-8: {exc.reason})") from exc
        except csv.Error as exc:
            raise InvalidInput.for_field("file", f"CSV 格式错误 (malformed CSV: {exc})") from exc
        if batch:
            yield batch


def _count(
    rows: Iterable[tuple[int, dict[str, str], str]], report: IngestReport
) -> Iterator[tuple[int, dict[str, str], str]]:
    for item in rows:
        report.rows_read += 1
        yield item


# Parallel parsing. The parent cuts the file into blocks that end at a record boundary
# (a newline preceded by an even number of quote characters, so quoted fields may hold
# newlines), workers decode and parse them, and the parent takes the results in order.
# Drafts cross the process boundary as plain tuples: pickling dataclasses and enums
# would cost more than parsing them.

_WORKER_PARSER: RowParser | None = None


def _init_worker(region: str, pilot_codes: tuple[str, ...], today: str) -> None:
    global _WORKER_PARSER
    _WORKER_PARSER = RowParser(
        catalogue(Region(region)), pilot_codes=frozenset(pilot_codes), today=date.fromisoformat(today)
    )


@dataclass(slots=True)
class _Block:
    items: list[Prepared]
    rejects: list[Reject]
    read: int
    error: str = ""


def _parse_block(data: bytes, first_line: int, offset: int, header: list[str]) -> _Block:
    parser = _WORKER_PARSER
    assert parser is not None, "worker not initialised"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Block([], [], 0, f"文件不是 UTF-8 编码 (not UTF-8: {exc.reason} at byte {offset + exc.start})")
    block = _Block([], [], 0)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = _csv_body(reader, _csv_layout(header), first_line)
    try:
        block.items.extend(prepare(d) for d in _parse_rows(rows, parser, block.rejects))
    except csv.Error as exc:
        return _Block([], [], 0, f"CSV 格式错误 (malformed CSV: {exc})")
    block.read = len(block.items) + len(block.rejects)
    return block


def _record_boundary(data: bytes) -> int:
    """Index just past the last newline that ends a record in ``data``, or -1."""
    quotes = data.count(b'"')
    pos = data.rfind(b"\n")
    while pos != -1:
        if (quotes - data.count(b'"', pos + 1)) % 2 == 0:
            return pos + 1
        pos = data.rfind(b"\n", 0, pos)
    return -1


def _blocks(handle: BinaryIO, size: int, first_line: int) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole records, each with the line number it starts on."""
    carry = b""
    line = first_line
    while True:
        chunk = handle.read(size)
        if not chunk:
            if carry:
                yield carry, line
            return
        data = carry + chunk
        cut = _record_boundary(data)
        if cut <= 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        yield block, line
        line += block.count(b"\n")


def _read_csv_parallel(
    path: Path, parser: RowParser, report: IngestReport, *, workers: int, block_bytes: int
) -> Iterator[list[Prepared]]:
    with path.open("rb") as handle:
        first = handle.readline()
        try:
            header_text = first.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput.for_field("file", f"文件不是 UTF-8 编码 (not UTF-8: {exc.reason})") from exc
        header = next(csv.reader([header_text]), None)
        if not header:
            raise InvalidInput.for_field("file", "文件为空 (the file is empty)")
        _csv_layout(header)  # missing columns fail before any worker starts
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=parser.spec())
        pending: deque[Future[_Block]] = deque()
        try:
            offset = len(first)
            for block, line in _blocks(handle, block_bytes, 2):
                pending.append(pool.submit(_parse_block, block, line, offset, header))
                offset += len(block)
                if len(pending) > 2 * workers:
                    yield _take(pending.popleft(), report)
            while pending:
                yield _take(pending.popleft(), report)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _take(future: Future[_Block], report: IngestReport) -> list[Prepared]:
    block = future.result()
    if block.error:
        raise InvalidInput.for_field("file", block.error)
    report.rows_read += block.read
    report.rejects.extend(block.rejects)
    return block.items


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


PARALLEL_MIN_BYTES = 16 << 20


def default_workers(path: Path) -> int:
    """Worker processes worth starting for a file: none for small ones."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return min(4, os.cpu_count() or 1) if size >= PARALLEL_MIN_BYTES else 0


def ingest_file(path: Path, *, writer: SqlRecordWriter, parser: RowParser, workers: int | None = None) -> IngestReport:
    """Load a file into a node's database in one transaction.

    ``workers`` parser processes (default: by file size, see :func:`default_workers`).

    Raises:
        InvalidInput: the file cannot be read as a whole; nothing was stored.
    """
    report = IngestReport(source=path.name)
    batches = read_file(path, parser, report, workers=default_workers(path) if workers is None else workers)
    # The rejected count is only known once the file is read; the writer takes it last.
    report.counts = writer.load_prepared(
        batches, source=path.name, file_sha256=file_sha256(path), rejected=lambda: len(report.rejects)
    )
    return report
