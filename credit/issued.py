"""An issued report's document and its canonical JSON, from parts kept between reports.

Most lines of a report say the same in every report of its shape ("no record" here,
"not covered" there: see :func:`credit.report.merge`, which shares those lines between
reports). Their document and canonical JSON are kept, keyed by the line object, and a
report's canonical JSON is put together from them and the few parts made for it (the
subject, numbers, times, regions and the lines that hold records). The result is, byte
for byte, ``canonical(report_document(report, issue), known_plain=True)``: the
standard library's compact, sorted encoding of a list or an object is the encodings of
its members joined, which is what is done here.
"""

from __future__ import annotations

from typing import Any

from credit.document import Issue, line_document, report_document
from credit.report import MergedReport, ReportLine
from credit.signing import canonical

# Lines that hold no record and no excluded count, and whole sets of lines without any
# (a report that found nothing shares all its lines), by identity: an entry keeps its
# object alive, so that the id is not reused while it is here. Bounded: when full, the
# cache starts again.
_KEPT = 4096
_lines: dict[int, tuple[ReportLine, dict[str, Any], bytes]] = {}
_line_sets: dict[int, tuple[tuple[ReportLine, ...], list[dict[str, Any]], bytes]] = {}


def _line(line: ReportLine) -> tuple[dict[str, Any], bytes]:
    kept = _lines.get(id(line))
    if kept is not None and kept[0] is line:
        return kept[1], kept[2]
    part = line_document(line)
    text = canonical(part, known_plain=True)
    if not any(cell.records or cell.excluded for cell in line.cells):
        if len(_lines) >= _KEPT:
            _lines.clear()
        # Shared between documents, as the cells are (see credit.document): documents
        # are read, serialised and signed, never changed after they are built.
        _lines[id(line)] = (line, part, text)
    return part, text


def issued_document(report: MergedReport, issue: Issue) -> tuple[dict[str, Any], bytes]:
    """The report's document (:func:`credit.document.report_document`) and its
    canonical JSON (:func:`credit.signing.canonical`, the document being plain by
    construction).

    Raises nothing.
    """
    parts, lines = _lines_of(report.lines)
    document = report_document(report, issue, lines=parts)
    # Members sort by name: those before "lines", the lines, those after.
    head = canonical({k: v for k, v in document.items() if k < "lines"}, known_plain=True)
    tail = canonical({k: v for k, v in document.items() if k > "lines"}, known_plain=True)
    return document, b"".join((head[:-1], b',"lines":[', lines, b"],", tail[1:]))


def _lines_of(lines: tuple[ReportLine, ...]) -> tuple[list[dict[str, Any]], bytes]:
    kept = _line_sets.get(id(lines))
    if kept is not None and kept[0] is lines:
        return kept[1], kept[2]
    parts = [_line(line) for line in lines]
    documents, text = [part for part, _ in parts], b",".join(text for _, text in parts)
    if all(id(line) in _lines for line in lines):
        if len(_line_sets) >= _KEPT:
            _line_sets.clear()
        _line_sets[id(lines)] = (lines, documents, text)
    return documents, text
