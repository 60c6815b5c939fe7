"""Loading authorities' files into a node, as they publish them.

Readers (:mod:`nodes.ingest.sources`) take CSV in UTF-8 or GB18030, XLSX and XLS, and
JSONL, find the header row and recognise the layout (:mod:`credit.layouts`). The row
rules (:mod:`nodes.ingest.rules`) say what a row means — its subject, domain (from the
authority's name when the file has no 领域 column), scope, dates, procedure and status —
or why it is rejected; the columnar loader (:mod:`nodes.ingest.columnar`) applies them a
batch at a time. Rows of one decision are joined into one record; rows that only share a
number stay apart. Every valid record is stored, also where the region's catalogue does
not cover its domain (reports show only what the catalogue covers). The whole file is
stored in one transaction, so an interrupted ingest leaves the node as it was, and
loading the same file again changes nothing (see :func:`nodes.store.plan_versions`).

A register of market entities (市场主体登记信息: a layout of kind ``register``) loads the
same way into the node's register (:mod:`nodes.registers`), one entry per credit code:
its rows are checked by :class:`nodes.ingest.columnar.RegisterColumns`, a changed entry
replaces the stored one, and a file loaded again changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Full, Queue

import polars as pl
from sqlalchemy import Engine

from credit.catalogue import Scope
from nodes.ingest.columnar import ColumnarRules, RegisterColumns, Tally
from nodes.ingest.rules import FileOptions, RegisterRules, RowRules, rebuild_item, second_item
from nodes.ingest.sources import Source, open_source
from nodes.ingest.values import RowError
from nodes.loader import FrameWriter
from nodes.registers import RegisterWriter
from nodes.store import WriteCounts

__all__ = ["FileOptions", "IngestReport", "Reject", "RowError", "RowRules", "ingest_file", "read_file"]


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    reason: str
    raw: str


_VALUE = re.compile(r"'[^']*'|「[^」]*」|\d{4}-\d{2}-\d{2}|\d+")


@dataclass
class IngestReport(Tally):
    """What a load did with a file: the summary ``jjj ingest`` prints."""

    source: str = ""
    layout: str = ""
    layout_name: str = ""
    encoding: str = ""
    sheet: str = ""
    rows_read: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    rejects: list[Reject] = field(default_factory=list)
    dry_run: bool = False

    @property
    def skipped(self) -> int:
        return self.blank + self.footer

    def reasons(self) -> list[tuple[str, int]]:
        """Reject reasons grouped (values in them masked), most frequent first."""
        return Counter(_VALUE.sub("…", r.reason) for r in self.rejects).most_common()

    def summary(self) -> list[str]:
        """The load in lines a person reads."""
        c = self.counts
        where = f"，工作表「{self.sheet}」" if self.sheet else ""
        lines = [
            f"{self.source}: {self.layout_name} [{self.layout}]，{self.encoding}{where}"
            + ("（试运行，未写入 dry run: nothing stored）" if self.dry_run else ""),
            f"  读取 {self.rows_read} 行 (rows read); 新增 {c.added} (added), "
            f"变更 {c.changed} (changed, new versions), "
            f"未变 {c.unchanged} (unchanged), 拒绝 {len(self.rejects)} (rejected), "
            f"跳过 {self.skipped} (skipped: {self.blank} blank, {self.footer} footer)",
        ]
        if self.merged:
            lines.append(
                f"  {self.merged} 行与同一决定的其他行合并为一条记录 (rows joined into their decision's record)"
            )
        if self.not_reportable:
            lines.append(
                f"  {self.not_reportable} 条记录不在本地区目录内，已存储但不进入报告 "
                "(stored, outside the region's catalogue: not reportable)"
            )
        for warning in self.warnings[:5]:
            lines.append(f"  注意 (warning): {warning}")
        if len(self.warnings) > 5:
            lines.append(f"  … {len(self.warnings) - 5} more warnings")
        if self.rejects:
            lines.append("  拒绝原因 (reject reasons):")
            lines.extend(f"    {n:>7}  {reason}" for reason, n in self.reasons()[:10])
        if self.unmapped:
            lines.append("  无法对应领域的机关 (authorities that map to no domain):")
            lines.extend(f"    {n:>7}  {name}" for name, n in self.unmapped.most_common(20))
            if len(self.unmapped) > 20:
                lines.append(f"    … {len(self.unmapped) - 20} more")
        return lines

    def write_rejects(self, path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", "row"])
            for r in self.rejects:
                writer.writerow([r.line, r.reason, r.raw])


def read_file(
    path: Path, rules: RowRules, report: IngestReport, *, encoding: str = "", sheet: str = ""
) -> Iterator[pl.DataFrame]:
    """Batches of records ready to store (frames of :data:`nodes.loader.FRAME_COLUMNS`,
    each row as :func:`nodes.store.prepare` makes it), in file order; rejects, skipped rows
    and the layout go into ``report``.

    Raises:
        InvalidInput: the file cannot be read as a whole.
    """
    source = Source()
    # Reading (Arrow's parser) runs a batch ahead of checking (polars), in its own thread.
    batches = prefetch(open_source(path, source, encoding=encoding, sheet=sheet))
    assert source.layout is not None or path.suffix.lower() in (".jsonl", ".ndjson")
    return _checked(batches, source, rules, report)


def _checked(
    batches: Iterator[pl.DataFrame], source: Source, rules: RowRules, report: IngestReport
) -> Iterator[pl.DataFrame]:
    columnar: ColumnarRules | None = None
    for frame in batches:
        if columnar is None:
            layout = source.layout
            assert layout is not None
            report.layout, report.layout_name = layout.id, layout.name
            report.encoding, report.sheet = source.encoding, source.sheet
            options = replace(rules.options, layout_domain=layout.domain, layout_scope=layout.scope)
            columnar = ColumnarRules(replace(rules, options=options))
        checked = columnar.check(frame, first_cell="__first")
        report.rows_read += frame.height
        report.add(checked)
        report.rejects.extend(Reject(line, reason, raw) for line, reason, raw in checked.rejects)
        _take_malformed(source, report)
        yield checked.frame
    _take_malformed(source, report)
    if columnar is None and source.layout is not None:
        report.layout, report.layout_name = source.layout.id, source.layout.name
        report.encoding, report.sheet = source.encoding, source.sheet
    report.rejects.sort(key=lambda r: r.line)


def _take_malformed(source: Source, report: IngestReport) -> None:
    while source.malformed:
        report.rows_read += 1
        report.rejects.append(Reject(*source.malformed.popleft()))


def prefetch(items: Iterator[pl.DataFrame], depth: int = 2) -> Iterator[pl.DataFrame]:
    """``items`` produced by a second thread, up to ``depth`` ahead: reading and checking
    the next batches (mostly in polars and Arrow, which release the GIL) overlaps with
    storing this one. An error in the producer is raised here; leaving early stops it.

    Raises:
        Exception: whatever producing an item raised.
    """
    done = object()
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer(exc)

    thread = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, pl.DataFrame)
            yield item
    finally:
        stop.set()
        thread.join()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    path: Path,
    *,
    engine: Engine,
    rules: RowRules,
    encoding: str = "",
    sheet: str = "",
    dry_run: bool = False,
) -> IngestReport:
    """Load a file into a node's database in one transaction (or, with ``dry_run``, check
    and count everything and store nothing).

    Raises:
        InvalidInput: the file cannot be read as a whole; nothing was stored.
    """
    report = IngestReport(source=path.name, dry_run=dry_run)
    source = Source()
    rows = open_source(path, source, encoding=encoding, sheet=sheet)
    if source.layout is not None and source.layout.is_register:
        return _ingest_register(path, source, rows, engine=engine, rules=rules, report=report, dry_run=dry_run)
    batches = _checked(prefetch(rows), source, rules, report)
    # The rejected count is only known once the file is read; the writer takes it last.
    writer = FrameWriter(engine, merge=rebuild_item, rekey=second_item)
    report.counts = writer.load(
        prefetch(batches),
        source=path.name,
        file_sha256=file_sha256(path),
        rejected=lambda: len(report.rejects),
        dry_run=dry_run,
    )
    report.merged += report.counts.joined
    return report


def _ingest_register(
    path: Path,
    source: Source,
    rows: Iterator[pl.DataFrame],
    *,
    engine: Engine,
    rules: RowRules,
    report: IngestReport,
    dry_run: bool,
) -> IngestReport:
    """A register of market entities into the node's register, in one transaction."""
    layout = source.layout
    assert layout is not None
    report.layout, report.layout_name = layout.id, layout.name
    report.encoding, report.sheet = source.encoding, source.sheet
    columns = RegisterColumns(RegisterRules(today=rules.today, pilot_codes=rules.pilot_codes))

    def checked() -> Iterator[pl.DataFrame]:
        for frame in prefetch(rows):
            batch = columns.check(frame, first_cell="__first")
            report.rows_read += frame.height
            report.add(batch)
            report.rejects.extend(Reject(line, reason, raw) for line, reason, raw in batch.rejects)
            _take_malformed(source, report)
            yield batch.frame
        _take_malformed(source, report)

    counts = RegisterWriter(engine).load(checked(), source=path.name, dry_run=dry_run)
    report.rejects.sort(key=lambda r: r.line)
    report.counts = WriteCounts(counts.added, counts.changed, counts.unchanged)
    if counts.repeated:
        report.warnings.append(
            f"{counts.repeated} 行与同批中同一主体的后一行重复，以后一行为准 "
            f"(rows repeat a subject later in the file: the later row stands)"
        )
    return report


def file_options(domain_text: str = "", scope_text: str = "") -> FileOptions:
    """``--domain`` and ``--scope`` as the rules take them.

    Raises:
        UnknownName: no such domain or scope.
    """
    from credit.catalogue import domain

    return FileOptions(
        domain=domain(domain_text, field="domain").code if domain_text else "",
        scope=Scope.parse(scope_text) if scope_text else None,
    )
